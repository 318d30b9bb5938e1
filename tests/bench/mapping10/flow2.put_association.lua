-- The 10-rule mapping of the benchmark: a typical supplier dialect applied to
-- every deelname PUT (tests/bench/bench_flow2.sh, callgrind figure).
local oke = require("oke")

local rules = oke.rules {
  { rename = "consumers.nl-test-admin.additionalTimeInMin", to = "extraMinutes" },
  { enum = "role", map = { student = "candidate", invigilator = "supervisor" }, default = oke.keep },
  { enum = "state", map = { canceled = "cancelled" }, default = oke.keep },
  { drop = "person.otherCodes" },
  { drop = "person.languageOfChoice" },
  { rename = "person.givenName", to = "person.firstName" },
  { rename = "person.surname", to = "person.lastName" },
  { default = "person.surnamePrefix", value = "" },
  { set = "source", value = "okegw" },
  { rename = "consumers.nl-test-admin.personalNeeds", to = "aids" },
}

function to_peer(msg, ctx)
  return rules(msg, ctx)
end

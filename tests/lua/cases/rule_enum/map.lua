local oke = require("oke")
local rules = oke.rules {
  { enum = "role", map = { student = "candidate", invigilator = "supervisor" } },
  { enum = "consumers.nl-test-admin.safety",
    map = { securedComputer = "lockdown", fixedLocation = "room", surveillance = "proctor" } },
}
function to_peer(msg, ctx)
  return rules(msg, ctx)
end

local oke = require("oke")
local rules = oke.rules {
  { rename = "consumers.nl-test-admin.duration", to = "testMinutes" },
  { duration = "testMinutes", to = "minutes" },
  { enum = "consumers.nl-test-admin.startOptions",
    map = { individualStart = "free", triggeredStart = "released" } },
  { drop = "description" },
  { default = "teachingLanguage", value = "nld" },
  { date = "startDateTime", to = "epoch" },
  { date = "endDateTime", to = "epoch" },
  { lts = "name", to = "text" },
  { set = "source", value = "okegw" },
}
function to_peer(msg, ctx)
  return rules(msg, ctx)
end

local oke = require("oke")
local rules = oke.rules {
  { rename = "consumers.nl-test-admin.additionalTimeInMin", to = "extraMinutes" },
  { rename = "person.givenName", to = "person.firstName" },
  { rename = "missing.field", to = "somewhere" }, -- absent: nothing happens
}
function to_peer(msg, ctx)
  return rules(msg, ctx)
end

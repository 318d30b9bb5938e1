local oke = require("oke")
local rules = oke.rules {
  { move = "extraMinutes", to = "consumers.nl-test-admin.additionalTimeInMin" },
}
function from_peer(msg, ctx)
  return rules(msg, ctx)
end

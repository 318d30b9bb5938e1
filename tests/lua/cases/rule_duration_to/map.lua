local oke = require("oke")
local rules = oke.rules {
  { duration = "consumers.nl-test-admin.duration", to = "minutes" },
  { duration = "pause", to = "seconds" },
}
function to_peer(msg, ctx)
  return rules(msg, ctx)
end

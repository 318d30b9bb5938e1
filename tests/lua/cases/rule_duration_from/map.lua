local oke = require("oke")
local rules = oke.rules {
  { duration = "duration", from = "minutes" },
  { duration = "pause", from = "seconds" },
}
function from_peer(msg, ctx)
  return rules(msg, ctx)
end

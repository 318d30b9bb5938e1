local oke = require("oke")
local rules = oke.rules {
  { date = "start", from = "epoch", offset = "CET" },
}
function to_peer(msg, ctx)
  return rules(msg, ctx)
end

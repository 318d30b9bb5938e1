local oke = require("oke")
local rules = oke.rules {
  { date = "start", from = "epoch", offset = "+01:00" },
  { date = "end", from = "epoch_ms", offset = "Europe/Amsterdam" },
  { date = "created", from = "epoch" },
}
function from_peer(msg, ctx)
  return rules(msg, ctx)
end

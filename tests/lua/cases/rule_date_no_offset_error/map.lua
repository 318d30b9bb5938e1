local oke = require("oke")
local rules = oke.rules {
  { date = "startDateTime", to = "epoch" },
}
function to_peer(msg, ctx)
  return rules(msg, ctx)
end

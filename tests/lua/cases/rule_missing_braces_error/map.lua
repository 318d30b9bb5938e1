local oke = require("oke")
local rules = oke.rules { rename = "a", to = "b" }
function to_peer(msg, ctx)
  return rules(msg, ctx)
end

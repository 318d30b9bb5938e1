local oke = require("oke")
local rules = oke.rules {
  { rename = "a", to = "b", drop = "c" },
}
function to_peer(msg, ctx)
  return rules(msg, ctx)
end

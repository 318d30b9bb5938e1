local oke = require("oke")
local rules = oke.rules {
  { drop = "items.*.person" },
  { drop = "tags.*" },
}
function to_peer(msg, ctx)
  return rules(msg, ctx)
end

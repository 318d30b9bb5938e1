local oke = require("oke")
local rules = oke.rules {
  { drop = "description" },
  { convert = "role", map = { student = "candidate" } },
}
function to_peer(msg, ctx)
  return rules(msg, ctx)
end

local oke = require("oke")
local rules = oke.rules {
  { enum = "role", map = { coordinator = "staff", assessor = "staff" }, reverse = true },
}
function to_peer(msg, ctx)
  return rules(msg, ctx)
end

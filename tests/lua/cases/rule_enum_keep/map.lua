local oke = require("oke")
local rules = oke.rules {
  -- only one value differs; the others pass as they are
  { enum = "state", map = { canceled = "cancelled" }, default = oke.keep },
  { enum = "other", map = { canceled = "cancelled" }, default = oke.keep },
}
function to_peer(msg, ctx)
  return rules(msg, ctx)
end

local oke = require("oke")
local rules = oke.rules {
  -- the supplier knows only candidates and "staff"
  { enum = "role", map = { student = "candidate" }, default = "staff" },
}
function to_peer(msg, ctx)
  return rules(msg, ctx)
end

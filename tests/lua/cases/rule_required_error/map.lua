local oke = require("oke")
local rules = oke.rules {
  { enum = "role", map = { student = "candidate" }, required = true },
}
function to_peer(msg, ctx)
  return rules(msg, ctx)
end

local oke = require("oke")
local rules = oke.rules {
  { enum = "role", mapp = { student = "candidate" } },
}
function to_peer(msg, ctx)
  return rules(msg, ctx)
end

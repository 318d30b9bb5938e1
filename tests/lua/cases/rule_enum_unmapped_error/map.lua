local oke = require("oke")
local rules = oke.rules {
  { drop = "description" },
  { enum = "role", map = { student = "candidate", invigilator = "supervisor" } },
}
function to_peer(msg, ctx)
  return rules(msg, ctx)
end

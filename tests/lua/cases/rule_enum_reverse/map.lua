local oke = require("oke")
local rules = oke.rules {
  { enum = "role", map = { student = "candidate", invigilator = "supervisor" }, reverse = true },
}
function from_peer(msg, ctx)
  return rules(msg, ctx)
end

local oke = require("oke")
local roles = { student = "candidate", invigilator = "supervisor" }
function to_peer(msg, ctx)
  msg.role = oke.map_enum(msg.role, roles)
  msg.other = oke.map_enum("guest", roles, "observer")
  msg.kept = oke.map_enum("assessor", roles, oke.keep)
end

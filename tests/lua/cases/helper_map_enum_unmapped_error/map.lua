local oke = require("oke")
local roles = { student = "candidate", invigilator = "supervisor" }
function to_peer(msg, ctx)
  msg.role = oke.map_enum(msg.role, roles)
end

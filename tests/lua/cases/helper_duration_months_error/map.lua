local oke = require("oke")
function to_peer(msg, ctx)
  msg.minutes = oke.duration_to_minutes(msg.duration)
end

local oke = require("oke")
function to_peer(msg, ctx)
  msg.start = oke.date_to_epoch(msg.startDateTime)
end

local oke = require("oke")
function to_peer(msg, ctx)
  msg.start = oke.date_to_epoch("2026-02-30T09:00:00Z")
end

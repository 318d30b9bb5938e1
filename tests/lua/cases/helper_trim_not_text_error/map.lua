local oke = require("oke")
function to_peer(msg)
  msg.x = oke.trim(msg.n)
end

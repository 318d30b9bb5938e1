local oke = require("oke")
function to_peer(msg)
  for k, v in pairs(msg) do msg[k] = oke.trim(v) end
  return msg
end

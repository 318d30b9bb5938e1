local oke = require("oke")
function to_peer(msg, ctx)
  local removed = oke.delete(msg, "description")
  oke.delete(msg, "modeOfDelivery.0")       -- the list shrinks
  oke.delete(msg, "consumers.someone-else") -- a whole consumers entry
  oke.delete(msg, "not.there")              -- nothing happens
  msg.removed = removed
end

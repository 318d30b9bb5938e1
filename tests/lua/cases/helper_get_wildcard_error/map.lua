local oke = require("oke")
function to_peer(msg, ctx)
  return { roles = oke.get(msg, "items.*.role") }
end

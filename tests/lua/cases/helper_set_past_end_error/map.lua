local oke = require("oke")
function to_peer(msg, ctx)
  oke.set(msg, "name.3.value", "x")
end

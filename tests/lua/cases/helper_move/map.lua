local oke = require("oke")
function to_peer(msg, ctx)
  msg.moved = oke.move(msg, "consumers.nl-test-admin.additionalTimeInMin", "extraMinutes")
  msg.not_moved = oke.move(msg, "nothing", "elsewhere")
end

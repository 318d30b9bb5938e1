local oke = require("oke")
function to_peer(msg, ctx)
  msg.empty_list = json.array()
  msg.empty_object = json.object()
  msg.plain_empty = {}
  msg.null_value = json.null
  msg.was_list = json.is_array(msg.arrived_empty)
  msg.big = 9007199254740992 + 0
end

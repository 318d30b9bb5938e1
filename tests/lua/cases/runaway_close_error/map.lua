function to_peer(msg)
  local guard <close> = setmetatable({}, { __close = function() while true do end end })
  msg.x = 1
end

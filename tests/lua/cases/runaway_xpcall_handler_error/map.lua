function to_peer(msg)
  xpcall(function() while true do end end, function() while true do end end)
  msg.x = 1
end

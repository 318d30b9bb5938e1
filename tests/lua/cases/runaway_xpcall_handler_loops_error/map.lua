function to_peer(msg)
  xpcall(error, function() while true do end end)
  msg.x = 1
end

function to_peer(msg)
  msg.x = table.concat({}, "", 1, 1 << 40)
end

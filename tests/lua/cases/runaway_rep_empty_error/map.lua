function to_peer(msg)
  msg.x = string.rep("", 1 << 34)
end

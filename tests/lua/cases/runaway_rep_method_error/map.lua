function to_peer(msg)
  msg.x = ("ab"):rep(1 << 40, ",")
end

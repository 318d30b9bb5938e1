function to_peer(msg)
  msg.x = msg.text:gsub("%s+x", "")
end

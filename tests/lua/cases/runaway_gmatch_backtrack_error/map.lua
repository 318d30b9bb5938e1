function to_peer(msg)
  for w in msg.text:gmatch(".-.-.-z") do msg.x = w end
end

function to_peer(msg)
  msg.x = msg.text:match("^%s*(.-)%s*$")
end

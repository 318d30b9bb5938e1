function to_peer(msg)
  local x = 1
  error("no position given", 0)
end

function to_peer(msg)
  local s = string.rep("x", 1000000)
  while true do local t = s .. "y" end
end

function to_peer(msg)
  local a, b = string.rep("a", 1000000) .. "b", string.rep("a", 1000000) .. "c"
  while true do local _ = a < b end
end

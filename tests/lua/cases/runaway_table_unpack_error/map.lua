function to_peer(msg)
  local t = {}
  for i = 1, 100000 do t[i] = i end
  for i = 1, 1000 do local _ = select("#", table.unpack(t)) end
end

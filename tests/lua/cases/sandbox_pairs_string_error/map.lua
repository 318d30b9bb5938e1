function to_peer(msg)
  local next_, t = pairs(string)
  rawset(t, "upper", function() return "pwned" end)
end

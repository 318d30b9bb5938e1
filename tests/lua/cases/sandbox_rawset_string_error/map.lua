function to_peer(msg)
  rawset(string, "upper", function() return "pwned" end)
end

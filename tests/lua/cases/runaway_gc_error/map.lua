function to_peer(msg)
  setmetatable({}, { __gc = function() while true do end end })
end

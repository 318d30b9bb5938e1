function to_peer(msg)
  table.move({}, 1, 1 << 40, 2)
end

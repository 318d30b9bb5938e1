function to_peer(msg)
  error({ code = 1 })
end

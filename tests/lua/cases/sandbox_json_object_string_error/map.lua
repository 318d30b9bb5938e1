function to_peer(msg)
  json.object(string)
end

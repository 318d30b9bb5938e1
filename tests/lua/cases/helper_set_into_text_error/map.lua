local oke = require("oke")
function to_peer(msg, ctx)
  oke.set(msg, "person.name.first", "Joke")
end

local oke = require("oke")
function to_peer(msg, ctx)
  oke.consumer(msg).offeringState = "active"           -- the entry is there: edited
  oke.consumer(msg.person).preferredName = "Joke"      -- not there: made
end

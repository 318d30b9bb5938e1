local oke = require("oke")
function to_peer(msg, ctx)
  oke.set(msg, "consumers.nl-test-admin.locationCode", "A22")
  oke.set(msg, "consumers.consumerKey=other.x", 2)
end

local oke = require("oke")
local rules = oke.rules {
  { drop = "description" },
  { drop = "otherCodes" },
  { drop = "consumers.nl-test-admin.safety" },
  { drop = "modeOfDelivery.0" },
  { drop = "not.there" },
}
function to_peer(msg, ctx)
  return rules(msg, ctx)
end

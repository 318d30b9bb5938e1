local oke = require("oke")
local rules = oke.rules {
  { path = "consumers.nl-test-admin.locationCode",
    fn = function(value) if not value then error("no room given", 0) end end },
}
function to_peer(msg, ctx)
  return rules(msg, ctx)
end

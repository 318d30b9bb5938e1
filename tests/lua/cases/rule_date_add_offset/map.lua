local oke = require("oke")
local rules = oke.rules {
  -- this supplier sends Dutch local times without an offset
  { date = "startDateTime", add_offset = "+01:00" },
  { date = "endDateTime", add_offset = "Europe/Amsterdam" },
}
function from_peer(msg, ctx)
  return rules(msg, ctx)
end

local oke = require("oke")
local rules = oke.rules {
  { date = "startDateTime", to = "epoch" },
  { date = "endDateTime", to = "epoch_ms" },
  { date = "consumers.nl-test-admin.lastPossibleStartDateTime", to = "local", offset = "Europe/Amsterdam" },
  { date = "missing", to = "epoch" },
}
function to_peer(msg, ctx)
  return rules(msg, ctx)
end

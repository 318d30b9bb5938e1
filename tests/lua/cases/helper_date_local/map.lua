local oke = require("oke")
function to_peer(msg, ctx)
  return {
    plus_one = oke.date_local("2026-03-17T08:00:00Z", "+01:00"),
    summer = oke.date_local("2026-07-01T10:00:00Z", "Europe/Amsterdam"),
    utc = oke.date_local("2026-03-17T09:00:00+01:00", "Z"),
  }
end

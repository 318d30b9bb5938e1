local oke = require("oke")
function to_peer(msg, ctx)
  return {
    fixed = oke.date_add_offset("2026-03-17T09:00:00", "+01:00"),
    space_no_seconds = oke.date_add_offset("2026-03-17 09:00", "+01:00"),
    fraction = oke.date_add_offset("2026-03-17T09:00:00.25", "Z"),
    already = oke.date_add_offset("2026-03-17T09:00:00-05:00", "+01:00"),
    winter = oke.date_add_offset("2026-03-17T09:00:00", "Europe/Amsterdam"),
    summer = oke.date_add_offset("2026-07-01T09:00:00", "Europe/Amsterdam"),
  }
end

local oke = require("oke")
function to_peer(msg, ctx)
  return {
    plus_one = oke.date_to_epoch("2026-03-17T09:00:00+01:00"),
    zulu = oke.date_to_epoch("2026-03-17T08:00:00Z"),
    minus = oke.date_to_epoch("2026-03-17T02:30:00-05:30"),
    leap_day = oke.date_to_epoch("2024-02-29T23:59:59+00:00"),
    before_1970 = oke.date_to_epoch("1969-12-31T23:00:00Z"),
    year_2100 = oke.date_to_epoch("2100-03-01T00:00:00Z"),
    fraction = oke.date_to_epoch("2026-03-17T08:00:00.5Z"),
    ms = oke.date_to_epoch("2026-03-17T08:00:00.123Z", "ms"),
    no_seconds = oke.date_to_epoch("2026-03-17T09:00+01:00"),
  }
end

local oke = require("oke")
function to_peer(msg, ctx)
  return {
    pt40m = oke.duration_to_minutes("PT40M"),
    pt1h30m = oke.duration_to_minutes("PT1H30M"),
    p0d = oke.duration_to_minutes("P0D"),
    p1dt2h = oke.duration_to_minutes("P1DT2H"),
    half_hour = oke.duration_to_minutes("PT0.5H"),
    pt90s = oke.duration_to_minutes("PT90S"),
    negative = oke.duration_to_minutes("-PT5M"),
    in_seconds = oke.duration_to_seconds("PT1M30S"),
  }
end

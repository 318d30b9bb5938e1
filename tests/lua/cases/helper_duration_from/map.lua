local oke = require("oke")
function to_peer(msg, ctx)
  return {
    forty = oke.duration_from_minutes(40),
    ninety = oke.duration_from_minutes(90),
    zero = oke.duration_from_minutes(0),
    negative = oke.duration_from_minutes(-5),
    text = oke.duration_from_minutes("45"),
    secs_90 = oke.duration_from_seconds(90),
    secs_30 = oke.duration_from_seconds(30),
    secs_120 = oke.duration_from_seconds(120),
  }
end

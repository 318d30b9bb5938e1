local oke = require("oke")
function to_peer(msg, ctx)
  return {
    zulu = oke.date_from_epoch(1773734400),
    plus_one = oke.date_from_epoch(1773734400, "+01:00"),
    minus = oke.date_from_epoch(1773734400, "-05:30"),
    winter = oke.date_from_epoch(1773734400, "Europe/Amsterdam"),
    summer = oke.date_from_epoch(1782900000, "Europe/Amsterdam"),
    ms = oke.date_from_epoch(1773734400123, "Z", "ms"),
    text = oke.date_from_epoch("1773734400"),
    negative = oke.date_from_epoch(-3600, "+01:00"),
  }
end

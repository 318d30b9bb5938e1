local oke = require("oke")
function to_peer(msg, ctx)
  local A = "Europe/Amsterdam"
  return {
    before_spring = oke.date_from_epoch(1774745999, A),
    after_spring = oke.date_from_epoch(1774746000, A),
    before_autumn = oke.date_from_epoch(1792889999, A),
    after_autumn = oke.date_from_epoch(1792890000, A),
    skipped_hour = oke.date_add_offset("2026-03-29T02:30:00", A),
    double_hour = oke.date_add_offset("2026-10-25T02:30:00", A),
    new_year = oke.date_add_offset("2026-12-31T23:30:00", A),
  }
end

-- default fills a missing field only: false and 0 are values, kept as they are
local oke = require("oke")
local rules = oke.rules {
  { default = "flag", value = true },
  { default = "count", value = 5 },
  { default = "absent", value = true },
}
function to_peer(msg) return rules(msg) end

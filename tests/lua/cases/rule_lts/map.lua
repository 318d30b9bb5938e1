local oke = require("oke")
local rules = oke.rules {
  { lts = "name", to = "text" },
  { lts = "description", to = "text" },   -- no nl-NL text: the field goes
  { lts = "title", from = "text" },
}
function to_peer(msg, ctx)
  return rules(msg, ctx)
end

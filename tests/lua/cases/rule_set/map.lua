local oke = require("oke")
local rules = oke.rules {
  { set = "x.y", value = 1 },
  { set = "teachingLanguage", value = "nld" },
  { set = "consumers.nl-test-admin.offeringState", value = "active" },
  { set = "description", value = json.null },
  { set = "tags", value = { "a", "b" } },
}
function to_peer(msg, ctx)
  return rules(msg, ctx)
end

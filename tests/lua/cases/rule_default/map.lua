local oke = require("oke")
local rules = oke.rules {
  { default = "teachingLanguage", value = "nld" },                -- missing: set
  { default = "resultExpected", value = true },                   -- null: set
  { default = "offeringType", value = "component" },              -- present: kept
  { default = "consumers.nl-test-admin.safety", value = json.array() },
}
function to_peer(msg, ctx)
  return rules(msg, ctx)
end

local oke = require("oke")
local rules = oke.rules {
  { move = "items.*.extraMinutes", to = "items.*.consumers.nl-test-admin.additionalTimeInMin" },
  { enum = "items.*.role", map = { student = "candidate", invigilator = "supervisor" }, reverse = true },
}
function from_peer(msg, ctx)
  return rules(msg, ctx)
end

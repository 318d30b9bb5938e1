-- Classic pushes a result to okegw's callback URL in its own shape:
--   {"candidate_ref", "session_ref", "status": "graded"|"absent", "grade": "7,5",
--    "points", "max_points", "graded_on": "2026-06-01", "attempt": 1}
-- This makes it the OKE flow-3 result for the deelname (ctx.id) that okegw
-- sends to the planning system.
local oke = require("oke")

function from_peer(msg, ctx)
  ctx.id = msg.candidate_ref
  local absent = msg.status == "absent"
  local entry = {
    consumerKey = "nl-test-admin",
    attendance = absent and "notPresent" or "present",
    final = false,
  }
  local result = {
    state = "completed",
    resultDate = msg.graded_on,
    weight = 100,
    consumers = { entry },
  }
  if not absent then
    if type(msg.grade) ~= "string" then error("a graded result needs a grade, got " .. tostring(msg.grade)) end
    local score = msg.grade:gsub(",", ".")           -- OKE wants a decimal point
    if not score:match("^%d%d?%.?%d?$") then error("grade '" .. msg.grade .. "' is not on the 0.0-10.0 scale") end
    if not score:find("%.") then score = score .. ".0" end
    result.score = score
    result.pass = tonumber(score) >= 5.5 and "passed" or "failed"
    entry.rawScore = msg.points
    entry.maxRawScore = msg.max_points
  end
  return { associationType = "componentOfferingAssociation", result = result }
end

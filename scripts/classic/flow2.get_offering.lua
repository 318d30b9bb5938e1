local oke = require("oke")
local classic = require("classic")

function from_peer(msg, ctx)
  if ctx.status ~= 200 then return classic.problem(msg, ctx) end
  return {
    offeringId = msg.session_ref,
    offeringType = "component",
    primaryCode = { codeType = "offeringCode", code = msg.title },
    name = oke.lts(msg.title),
    description = oke.lts(msg.title),
    teachingLanguage = "nld",
    resultExpected = true,
    component = msg.test_uuid,
    startDateTime = oke.date_from_epoch(msg.starts_at, "Europe/Amsterdam"),
    endDateTime = oke.date_from_epoch(msg.ends_at, "Europe/Amsterdam"),
    consumers = { {
      consumerKey = "nl-test-admin",
      offeringState = msg.status == "cancelled" and "canceled" or "active",
      locationCode = msg.location,
    } },
  }
end

-- An OKE zitting becomes a Classic session: times as epoch seconds, the test
-- by its uuid, the room code as location.
local oke = require("oke")
local classic = require("classic")

function to_peer(msg, ctx)
  return {
    session_ref = msg.offeringId,
    test_uuid = classic.ref(msg.component, "componentId"),
    title = oke.lts_value(msg.name) or oke.get(msg, "primaryCode.code"),
    starts_at = oke.date_to_epoch(msg.startDateTime),
    ends_at = oke.date_to_epoch(msg.endDateTime),
    location = oke.get(msg, "consumers.nl-test-admin.locationCode") or json.null,
  }
end

function from_peer(msg, ctx)
  if ctx.status >= 400 then return classic.problem(msg, ctx) end
end

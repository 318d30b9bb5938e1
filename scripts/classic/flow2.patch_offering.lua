-- Classic can only cancel a session (POST /api/v1/sessions/{id}/cancel).
local oke = require("oke")
local classic = require("classic")

function to_peer(msg, ctx)
  if oke.get(msg, "consumers.nl-test-admin.offeringState") ~= "canceled" then
    error("ToetsPlatform Classic can only cancel a zitting; send other changes as a PUT of the whole zitting")
  end
  return json.object()
end

function from_peer(msg, ctx)
  if ctx.status >= 400 then return classic.problem(msg, ctx) end
end

-- An OKE deelname becomes a Classic candidate. The person is embedded in
-- flow 2; Classic keeps only names and the student number.
local oke = require("oke")
local classic = require("classic")

function to_peer(msg, ctx)
  local p = msg.person
  if type(p) ~= "table" then error("a flow-2 deelname carries the person as an object") end
  local last = p.surname
  if p.surnamePrefix then last = p.surnamePrefix .. " " .. last end
  return {
    candidate_ref = msg.associationId,
    session_ref = classic.ref(msg.offering, "offeringId"),
    first_name = oke.get(p, "consumers.nl-test-admin.preferredName") or p.givenName,
    last_name = last,
    student_number = oke.get(p, "primaryCode.code") or json.null,
    extra_minutes = math.min(oke.get(msg, "consumers.nl-test-admin.additionalTimeInMin") or 0, 600),
    role = oke.map_enum(msg.role, classic.roles, "supervisor"),
  }
end

function from_peer(msg, ctx)
  if ctx.status >= 400 then return classic.problem(msg, ctx) end
end

-- Shared pieces of the ToetsPlatform Classic mappings (scripts/classic/).
-- Classic is a made-up legacy supplier that does not speak OKE: flat JSON,
-- epoch seconds, extra time in minutes, grades with a decimal comma. Its API
-- is described at the top of tests/peers/legacy_supplier.py.
local oke = require("oke")

local classic = {}

-- OKE role <-> Classic role. Classic knows only three roles.
classic.roles = { student = "candidate", invigilator = "supervisor", assessor = "assessor" }
-- Classic status of a candidate -> OKE association state.
classic.states = { planned = "associated", cancelled = "canceled", graded = "associated", absent = "associated" }

-- One Classic test as an OKE component (flow 0).
function classic.component(t)
  return {
    componentId = t.uuid,
    primaryCode = { codeType = "componentCode", code = t.code },
    componentType = "test",
    name = oke.lts(t.title),
    abbreviation = t.code,
    teachingLanguage = "nld",
    duration = oke.duration_from_minutes(t.minutes),
    consumers = { {
      consumerKey = "nl-test-admin",
      status = t.active and "active" or "inactive",
      resultValueType = "0.0-10.0",
    } },
  }
end

-- A list as one OOAPI page (Classic does not page: everything fits in one).
function classic.page(items)
  local list = json.array()
  for i, v in ipairs(items) do list[i] = v end
  return { pageSize = 250, pageNumber = 1, hasPreviousPage = false, hasNextPage = false,
           totalPages = 1, items = list }
end

-- Classic's {"error": "..."} as an OKE problem, so the caller sees why.
function classic.problem(msg, ctx)
  return { type = "about:blank", title = "ToetsPlatform Classic refused the request",
           status = tostring(ctx.status), detail = type(msg) == "table" and msg.error or nil }
end

-- A reference is an id or an embedded object (OOAPI expand).
function classic.ref(v, field)
  if type(v) == "table" then return v[field] end
  return v
end

-- One Classic candidate as an OKE deelname (flow 2 reads).
function classic.association(c)
  local a = {
    associationId = c.candidate_ref,
    associationType = "componentOfferingAssociation",
    role = oke.map_enum(c.role, classic.roles_back),
    state = oke.map_enum(c.status, classic.states),
    offering = c.session_ref,
    person = {
      givenName = c.first_name,
      surname = c.last_name,
      primaryCode = c.student_number and { codeType = "studentNumber", code = c.student_number } or nil,
    },
  }
  if a.role == "student" then
    a.consumers = { { consumerKey = "nl-test-admin", additionalTimeInMin = c.extra_minutes } }
  end
  return a
end

classic.roles_back = {}
for okev, classicv in pairs(classic.roles) do classic.roles_back[classicv] = okev end

return classic

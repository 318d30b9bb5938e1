-- wrk script for bench_flow2.sh: every request PUTs a new flow-2 deelname,
--   PUT /ooapi/associations/<id>  Content-Type: application/json
-- with body = $BENCH_BODY_FILE, its associationId replaced by <id>. Pushes of
-- one resource leave okegw one at a time (its outbox keeps their order), so
-- the same PUT over and over would measure one resource's queue; fresh ids
-- measure the gateway. The ids are UUIDs unique per wrk thread and request.
local path = os.getenv("BENCH_BODY_FILE")
if not path or path == "" then
  error("BENCH_BODY_FILE is not set")
end
local f = assert(io.open(path, "rb"))
local body = f:read("*a")
f:close()

local template_id = "0f57a72a-7f7d-5cea-87ec-6245bd3a2363"
local at = body:find(template_id, 1, true)
if not at then
  error("the body does not carry associationId " .. template_id)
end
local before, after = body:sub(1, at - 1), body:sub(at + #template_id)
local headers = {["Content-Type"] = "application/json", ["Accept"] = "application/json"}

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local n = 0
function request()
  n = n + 1
  local id = string.format("%08x-7f7d-5cea-87ec-%012x", tid or 0, n)
  return wrk.format("PUT", "/ooapi/associations/" .. id, headers, before .. id .. after)
end

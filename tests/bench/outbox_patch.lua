-- wrk script for bench_outbox.sh: flow-3 result PATCHes spread over associations.
--   PATCH <BENCH_PATH_PREFIX><id>  Content-Type: application/json  body = $BENCH_BODY_FILE
--   Authorization: Bearer $BENCH_TOKEN (when set)
-- $BENCH_IDS_FILE holds the association ids, one a line; $BENCH_IDS_PER_THREAD = k.
-- wrk thread i (0-based, in the order setup() sees them) owns ids [i*k, (i+1)*k).
-- k = 1: the thread's request is static (built once, no Lua per request, as in
--   flow2_put.lua); with as many threads as connections that is one association per
--   connection, so no two requests in flight ever push the same resource.
-- k > 1: each request takes the thread's next id round-robin (request() per request);
--   two connections of one thread can then push the same association at once, and
--   the second waits for the first (okegw delivers one resource at a time).
-- $BENCH_MAX_REQUESTS (optional, with $BENCH_THREADS = wrk -t): the run's answers in
--   all; each thread stops once it has its share (bench_memory.sh). wrk itself still
--   runs until its -d or SIGINT, so the caller ends it; requests in flight when a
--   thread stops are abandoned (the server still sees them).
local function env(name)
  local v = os.getenv(name)
  if not v or v == "" then
    error(name .. " is not set")
  end
  return v
end

local prefix = env("BENCH_PATH_PREFIX")
local k = tonumber(env("BENCH_IDS_PER_THREAD"))
local token = os.getenv("BENCH_TOKEN")

local f = assert(io.open(env("BENCH_BODY_FILE"), "rb"))
local body = f:read("*a")
f:close()

local ids = {}
for line in io.lines(env("BENCH_IDS_FILE")) do
  if line ~= "" then
    ids[#ids + 1] = line
  end
end

wrk.method = "PATCH"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local threads = 0
function setup(thread)
  thread:set("slot", threads)
  threads = threads + 1
end

local paths, next_i = {}, 1

function init(args)
  local first = slot * k + 1
  if first + k - 1 > #ids then
    error(string.format("thread %d needs ids %d..%d, %s has %d", slot, first, first + k - 1,
      os.getenv("BENCH_IDS_FILE"), #ids))
  end
  for i = first, first + k - 1 do
    paths[#paths + 1] = prefix .. ids[i]
  end
  wrk.path = paths[1]
end

if k > 1 then
  function request()
    local p = paths[next_i]
    next_i = next_i % #paths + 1
    return wrk.format(nil, p)
  end
end

local max_total = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "")
if max_total and max_total > 0 then
  local nthreads = tonumber(env("BENCH_THREADS"))
  local answered, share = 0, nil
  function response()
    if not share then
      share = math.floor(max_total / nthreads) + ((slot < max_total % nthreads) and 1 or 0)
    end
    answered = answered + 1
    if answered >= share then
      wrk.thread:stop()
    end
  end
end

-- wrk script for bench_flow2.sh: every request is the same flow-2 deelname PUT,
--   PUT <url path>  Content-Type: application/json  body = $BENCH_BODY_FILE
-- The path comes from the URL given to wrk. A static request (no request()
-- or response() callbacks) keeps wrk's own cost per request minimal.
local path = os.getenv("BENCH_BODY_FILE")
if not path or path == "" then
  error("BENCH_BODY_FILE is not set")
end
local f = assert(io.open(path, "rb"))
local body = f:read("*a")
f:close()

wrk.method = "PUT"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"

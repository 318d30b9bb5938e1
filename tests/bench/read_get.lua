-- wrk script for bench_read.sh: GETs of one path (the URL's), with
--   Accept: application/json   and   Authorization: Bearer $BENCH_TOKEN (when set).
-- Paced when $BENCH_RATE is set (requests/s of the whole run; $BENCH_CONNECTIONS =
-- wrk -c): each connection then waits BENCH_CONNECTIONS/BENCH_RATE s after every
-- answer before its next request (wrk's delay() hook), so the run offers at most
-- BENCH_RATE req/s; a little less, since a connection also waits for its answer.
-- wrk's delay() takes whole milliseconds: the fraction is kept on average by
-- rounding up with that probability. Latency is still measured from each
-- request's send to its answer; the pause is not part of it.
local token = os.getenv("BENCH_TOKEN")
wrk.method = "GET"
wrk.headers["Accept"] = "application/json"
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local rate = tonumber(os.getenv("BENCH_RATE") or "")
if rate and rate > 0 then
  local conns = tonumber(os.getenv("BENCH_CONNECTIONS") or "")
  if not conns or conns < 1 then
    error("BENCH_RATE needs BENCH_CONNECTIONS (wrk -c)")
  end
  local ms = conns * 1000 / rate
  local whole = math.floor(ms)
  local frac = ms - whole
  function delay()
    if math.random() < frac then
      return whole + 1
    end
    return whole
  end
end

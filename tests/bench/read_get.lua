-- wrk script for bench_read.sh: GETs of one path (the URL's), with
--   Accept: application/json   and   Authorization: Bearer $BENCH_TOKEN (when set).
-- Paced when $BENCH_RATE is set (requests/s of the whole run; $BENCH_CONNECTIONS =
-- wrk -c, $BENCH_THREADS = wrk -t): each connection waits after every answer
-- before its next request (wrk's delay() hook), at first BENCH_CONNECTIONS /
-- BENCH_RATE s, then scaled once a second so that the answers keep up with
-- BENCH_RATE (see below). wrk's delay() takes whole milliseconds: the fraction
-- is kept on average by rounding up with that probability. Latency is still
-- measured from each request's send to its answer; the pause is not part of it.
local token = os.getenv("BENCH_TOKEN")
wrk.method = "GET"
wrk.headers["Accept"] = "application/json"
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local rate = tonumber(os.getenv("BENCH_RATE") or "")
if rate and rate > 0 then
  local conns = tonumber(os.getenv("BENCH_CONNECTIONS") or "")
  local threads = tonumber(os.getenv("BENCH_THREADS") or "")
  if not conns or conns < 1 or not threads or threads < 1 then
    error("BENCH_RATE needs BENCH_CONNECTIONS and BENCH_THREADS (wrk -c, -t)")
  end
  local ms = conns * 1000 / rate -- the pause, per connection
  function delay()
    local whole = math.floor(ms)
    if math.random() < ms - whole then
      return whole + 1
    end
    return whole
  end
  -- The pause comes on top of each answer's latency, so the rate would fall
  -- short of BENCH_RATE; so once a second (os.time: whole seconds, counted from
  -- the first change of second after the start) the pause is scaled by how far
  -- this thread's answers since then are ahead of or behind its share of the
  -- rate (at most x1.4 or /1.4 a step), and the run gets close to BENCH_RATE.
  local share = rate / threads
  local start, last, answered = nil, nil, 0
  function response()
    local now = os.time()
    if not start then
      if not last then
        last = now
      elseif now ~= last then
        start, last = now, now
      end
      return
    end
    answered = answered + 1
    if now ~= last then
      last = now
      local f = answered / (share * (now - start))
      ms = ms * math.max(1 / 1.4, math.min(1.4, f))
    end
  end
end

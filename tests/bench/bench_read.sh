#!/usr/bin/env bash
# The read path of okegw against nginx: GET /ooapi/offerings/{id} of a zitting
# okegw routes to its TA, and the merged flow-0 catalogue GET /ooapi/components
# over two suppliers; throughput, latency, the p99 at half of okegw's peak, and
# callgrind figures (instructions per GET). See tests/bench/README.md.
#
#   tests/bench/bench_read.sh
#
# Environment (all optional):
#   OKEGW               okegw binary (default: build/okegw under the repo root)
#   BENCH_DURATION      wrk -d per target          (default 10s)
#   BENCH_CONNECTIONS   wrk -c                     (default 32)
#   BENCH_THREADS       wrk -t                     (default 2)
#   BENCH_WARMUP        unmeasured wrk run per target before the measured one (default 1s; 0 = none)
#   BENCH_HALF          0 skips the paced runs (p99 at half of okegw's peak; default 1)
#   BENCH_WORKERS       nginx worker_processes (peer, proxy) and okegw's [gateway] workers
#                       when the binary has that key (default: nproc)
#   BENCH_WORKERS_LIST  e.g. "1 2": okegw and the nginx proxy measured once per count
#                       (only when okegw has the workers key)
#   BENCH_CG_REQUESTS   the N of the callgrind figures (default 200; runs with 20 and 20+N)
#   BENCH_CALLGRIND     0 skips the callgrind part (default 1)
#   BENCH_TIMEOUT       hard limit for the whole run in seconds (default 300)
#   BENCH_KEEP          1 keeps the temp dir (logs, confs, callgrind files); it is
#                       always kept when the run fails
#
# Only 127.0.0.1 is ever contacted. Every process started here is stopped on
# exit, including on failure, Ctrl-C and the BENCH_TIMEOUT watchdog.

# shellcheck disable=SC2034 # the settings below are also read by lib.sh
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
WARMUP=${BENCH_WARMUP:-1s}
DO_HALF=${BENCH_HALF:-1}
CG_N=${BENCH_CG_REQUESTS:-200}
CG_BASE=20
DO_CALLGRIND=${BENCH_CALLGRIND:-1}
TIMEOUT=${BENCH_TIMEOUT:-300}
KEEP=${BENCH_KEEP:-0}

COMPONENT_1=d38a7c5e-0f1b-4e6d-a2c9-5e1b3d7f9a6a # supplier 1 (connector ta1)
COMPONENT_2=4b1e2c90-7a3d-4f55-9e0b-2c6d8a1f3e77 # supplier 2 (connector ta2)
OFFERING_ID=8557ada3-553e-58c2-b4e2-f69f35e91c78 # a zitting of COMPONENT_1
# the callers' bearer tokens (okegw identifies each system by its inbound_token)
TPL_TOKEN=bench-tpl-calls-okegw-000000002
TA1_TOKEN=bench-ta1-calls-okegw-00000001
TA2_TOKEN=bench-ta2-calls-okegw-00000002

OFFERING_PATH=/ooapi/offerings/$OFFERING_ID
COMPONENTS_PATH='/ooapi/components?componentType=test'

# shellcheck source=lib.sh
. "$HERE/lib.sh"
bench_traps
bench_workers

# ---- prerequisites ----------------------------------------------------------

bench_prerequisites flow0_get_components_response.json flow2_put_offering_request.json \
  common_get_service_metadata_response.json
[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || die "BENCH_CONNECTIONS must be a positive integer"

bench_tmpdir read
okegw_workers_probe
COUNTS=${WORKERS_LIST:-$WORKERS}

# ---- bodies -----------------------------------------------------------------
#
# The TA's answer to GET /offerings/{id} is the flow-2 offering fixture (the
# zitting okegw PUT there, with our ids): a valid OOAPI offering, since okegw
# checks its peers' answers against the OKE profile. Each supplier's components
# page is one test of the flow-0 fixture, under its own componentId.

OFFERING_BODY=$TMP/offering.json
PAGE_1=$TMP/components-1.json
PAGE_2=$TMP/components-2.json
METADATA=$TMP/metadata.json
cp "$FIXTURES/common_get_service_metadata_response.json" "$METADATA" || die "cannot copy the service metadata"
python3 - "$FIXTURES" "$OFFERING_BODY" "$PAGE_1" "$PAGE_2" "$COMPONENT_1" "$COMPONENT_2" "$OFFERING_ID" <<'EOF' ||
import copy, json, os, sys
fixtures, offering_body, page1, page2, c1, c2, offering = sys.argv[1:]
with open(os.path.join(fixtures, "flow0_get_components_response.json")) as f:
    p = json.load(f)
for i, (dst, cid) in enumerate(((page1, c1), (page2, c2))):
    c = copy.deepcopy(p["items"][i])
    c["componentId"] = cid
    # the gateway stamps x-testSystem itself
    c["otherCodes"] = [x for x in c.get("otherCodes", []) if x.get("codeType") != "x-testSystem"]
    q = dict(p, items=[c], pageSize=250, totalPages=1, hasNextPage=False)
    with open(dst, "w") as f:
        json.dump(q, f)
with open(os.path.join(fixtures, "flow2_put_offering_request.json")) as f:
    o = json.load(f)
o["component"] = c1
o["offeringId"] = offering
with open(offering_body, "w") as f:
    json.dump(o, f, indent=2)
EOF
  die "cannot write the bodies"

# ---- 1, 2. the stand-in for both suppliers and the TPL (nginx), nginx as a proxy
#
# One nginx is supplier 1 under /ta1/ (its page, and the zitting: a PUT answers
# 200 with an empty body, a GET the offering), supplier 2 under /ta2/ (its page)
# and the TPL under /tpl/ (nothing is pushed there in this benchmark).

read -r PEER_PORT PROXY_PORT <<<"$(free_ports 2)"
[[ -n ${PROXY_PORT:-} ]] || die "cannot find free ports"

mkdir -p "$TMP/peer" "$TMP/proxy"
{
  nginx_common "$TMP/peer"
  echo "http {"
  nginx_http_common "$TMP/peer"
  cat <<EOF
  server {
    listen 127.0.0.1:$PEER_PORT;
    location = /ta1/ooapi/components {
      default_type application/json;
      alias $PAGE_1;
    }
    location = /ta2/ooapi/components {
      default_type application/json;
      alias $PAGE_2;
    }
    # the zitting: PUT (and PATCH) 200 with an empty body (return reads the
    # body, so keep-alive stays in sync), GET the offering
    location = /ta1/ooapi/offerings/$OFFERING_ID {
      default_type application/json;
      if (\$request_method != GET) {
        return 200 '';
      }
      alias $OFFERING_BODY;
    }
    location /tpl/ {
      return 200 '';
    }
    # GET {base}/: the service metadata okegw reads from each peer at start
    location ~ ^/(ta1|ta2|tpl)/ooapi/\$ {
      default_type application/json;
      root $TMP;
      try_files /${METADATA##*/} =500;
    }
    location / {
      return 404 '';
    }
  }
}
EOF
} >"$TMP/peer/nginx.conf"
start_peer_and_proxy ": TA 1 under /ta1/ooapi, TA 2 under /ta2/ooapi, TPL under /tpl/ooapi"

# the peer and the proxy answer the benchmark requests with the expected JSON,
# keep-alive survives a PUT body (PUT, GET, GET on one curl connection)
for port in "$PEER_PORT" "$PROXY_PORT"; do
  out=$(curl -sS --max-time 10 -H 'Expect:' -o /dev/null -w '%{http_code} %{num_connects}\n' \
    -X PUT -H 'Content-Type: application/json' --data-binary "@$OFFERING_BODY" "http://127.0.0.1:$port/ta1$OFFERING_PATH" \
    --next -sS --max-time 10 -o "$TMP/offering-answer.json" -w '%{http_code} %{num_connects}\n' "http://127.0.0.1:$port/ta1$OFFERING_PATH" \
    --next -sS --max-time 10 -o "$TMP/page.json" -w '%{http_code} %{num_connects}\n' "http://127.0.0.1:$port/ta2$COMPONENTS_PATH" \
    2>>"$TMP/curl.err")
  [[ $out == $'200 1\n200 0\n200 0' ]] || die "127.0.0.1:$port: PUT/GET/GET on one connection gave [${out//$'\n'/, }] (want 200 1, 200 0, 200 0)"
  cmp -s "$TMP/offering-answer.json" "$OFFERING_BODY" || die "127.0.0.1:$port: GET offering is not the offering body"
  python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); sys.exit(0 if p["items"][0]["componentId"]==sys.argv[2] else 1)' \
    "$TMP/page.json" "$COMPONENT_2" || die "127.0.0.1:$port: the components page of TA 2 is not the expected JSON"
done
if errs=$(nginx_errors "$TMP/peer/error.log" "$TMP/proxy/error.log"); then
  die "nginx logged errors: $errs"
fi

# ---- 3. okegw -----------------------------------------------------------------

write_okegw_conf() { # DIR
  local d=$1 n
  mkdir -p "$d"
  {
    conf_gateway "$d/bench.db"
    conf_ooapi planning tpl "http://127.0.0.1:$PEER_PORT/tpl/ooapi" "$TPL_TOKEN"
    for n in 1 2; do
      local token_var=TA${n}_TOKEN
      conf_ooapi "ta$n" ta "http://127.0.0.1:$PEER_PORT/ta$n/ooapi" "${!token_var}"
    done
  } >"$d/plugins.conf"
}

# prime_okegw PORT: the TPL reads the merged catalogue (okegw learns the owners;
# both suppliers' tests, no connector left out), PUTs the zitting (routed to TA
# 1), and reads it back through okegw: 200, the TA's offering
prime_okegw() {
  local port=$1 st
  st=$(http_status GET "http://127.0.0.1:$port$COMPONENTS_PATH" "" "Authorization: Bearer $TPL_TOKEN")
  [[ $st == 200 ]] || die "okegw GET $COMPONENTS_PATH gave $st: $(head -c 300 "$TMP/curl.out")"
  python3 - "$TMP/curl.out" "$COMPONENT_1" "$COMPONENT_2" <<'EOF' ||
import json, sys
p = json.load(open(sys.argv[1]))
ids = sorted(i["componentId"] for i in p["items"])
sys.exit(0 if ids == sorted(sys.argv[2:]) else 1)
EOF
    die "okegw's merged catalogue is not the two suppliers' tests: $(head -c 400 "$TMP/curl.out")"
  curl -sS -o /dev/null -D "$TMP/headers.txt" --max-time 10 -H "Authorization: Bearer $TPL_TOKEN" \
    "http://127.0.0.1:$port$COMPONENTS_PATH" 2>>"$TMP/curl.err"
  ! grep -qi '^okegw-failed-connectors' "$TMP/headers.txt" ||
    die "okegw left a connector out of the catalogue: $(grep -i '^okegw-failed-connectors' "$TMP/headers.txt")"
  st=$(http_status PUT "http://127.0.0.1:$port$OFFERING_PATH" "$OFFERING_BODY" "Authorization: Bearer $TPL_TOKEN")
  is_2xx "$st" || die "okegw PUT offering gave $st: $(head -c 300 "$TMP/curl.out")"
  st=$(http_status GET "http://127.0.0.1:$port$OFFERING_PATH" "" "Authorization: Bearer $TPL_TOKEN")
  [[ $st == 200 ]] || die "okegw GET offering gave $st: $(head -c 300 "$TMP/curl.out")"
  python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))==json.load(open(sys.argv[2])) else 1)' \
    "$TMP/curl.out" "$OFFERING_BODY" || die "okegw's GET offering is not the TA's offering: $(head -c 300 "$TMP/curl.out")"
}

# ---- 4. wrk -------------------------------------------------------------------

export BENCH_TOKEN=$TPL_TOKEN BENCH_CONNECTIONS=$CONNECTIONS BENCH_THREADS=$THREADS # read by read_get.lua
WRK_WHAT=GET
bench() { # NAME URL
  local st
  st=$(http_status GET "$2" "" "Authorization: Bearer $TPL_TOKEN")
  [[ $st == 200 ]] || die "$1: the benchmark request gives $st before the run: $(head -c 300 "$TMP/curl.out")"
  wrk_bench "$1" "$2" "$HERE/read_get.lua"
}

# paced NAME URL RATE: a run (no warm-up) paced to RATE req/s
declare -A RATE
paced() {
  RATE[$1]=$3
  WRK_WHAT="GET paced to ${RATE[$1]} req/s" BENCH_RATE=${RATE[$1]} WARMUP=0 wrk_bench "$1" "$2" "$HERE/read_get.lua"
}
# half NAME URL PEAK: paced to half of PEAK req/s
half() {
  local rate
  rate=$(awk -v p="$3" 'BEGIN {printf "%.0f", p / 2}')
  ((rate > 0)) || die "$1: no peak to halve"
  paced "$1" "$2" "$rate"
}

P_OFF=/ta1$OFFERING_PATH
P_CMP=/ta1$COMPONENTS_PATH
CPU_WATCH=("peer nginx=$PEER_PID")
bench peer-off "http://127.0.0.1:$PEER_PORT$P_OFF"
bench peer-cmp "http://127.0.0.1:$PEER_PORT$P_CMP"

declare -A GW_WARN
for w in $COUNTS; do
  if [[ -n $WORKERS_LIST ]]; then
    start_proxy "$w"
  fi
  CPU_WATCH=("nginx proxy=$PROXY_PID" "peer nginx=$PEER_PID")
  bench "nginx-off-$w" "http://127.0.0.1:$PROXY_PORT$P_OFF"
  bench "nginx-cmp-$w" "http://127.0.0.1:$PROXY_PORT$P_CMP"

  d=$TMP/gw-$w
  GW_WORKERS=${GW_WORKERS:+$w} start_okegw "$d" 15
  GW_PID=$OKEGW_PID
  GW_PORT=$OKEGW_PORT
  log "okegw (pid $GW_PID; $OKEGW_ID${GW_WORKERS:+; workers = $w}) on 127.0.0.1:$GW_PORT"
  prime_okegw "$GW_PORT"
  log "okegw primed: the merged catalogue has both tests; the zitting PUT 2xx and GET 200 with the TA's offering"
  CPU_WATCH=("okegw=$GW_PID" "peer nginx=$PEER_PID")
  bench "okegw-off-$w" "http://127.0.0.1:$GW_PORT$OFFERING_PATH"
  bench "okegw-cmp-$w" "http://127.0.0.1:$GW_PORT$COMPONENTS_PATH"
  if [[ $DO_HALF == 1 ]]; then
    half "half-off-$w" "http://127.0.0.1:$GW_PORT$OFFERING_PATH" "${RPS[okegw-off-$w]}"
    half "half-cmp-$w" "http://127.0.0.1:$GW_PORT$COMPONENTS_PATH" "${RPS[okegw-cmp-$w]}"
  fi
  alive "$GW_PID" || die "okegw died during the run: $(tail -5 "$d/stderr.log")"
  # okegw at warn logs only problems: 5xx answers, connector failures, answers
  # that break the OKE profile (validate_answers = warn)
  GW_WARN[$w]=$(grep -c '"level":"\(warn\|error\)"' "$d/stderr.log")
  [[ ${GW_WARN[$w]} == 0 ]] || warn "okegw logged ${GW_WARN[$w]} warn/error lines, e.g.: $(grep -m1 '"level":"\(warn\|error\)"' "$d/stderr.log")"
  stop_pid "$GW_PID" TERM 15
  forget_pid "$GW_PID"
  [[ $STOP_RC == 0 ]] || warn "okegw exited with status $STOP_RC on SIGTERM"
  if [[ $DO_HALF == 1 ]]; then
    # the same rates through the nginx proxy: the tail this machine gives a
    # plain proxy at that load, next to okegw's
    CPU_WATCH=("nginx proxy=$PROXY_PID" "peer nginx=$PEER_PID")
    paced "halfnginx-off-$w" "http://127.0.0.1:$PROXY_PORT$P_OFF" "${RATE[half-off-$w]}"
    paced "halfnginx-cmp-$w" "http://127.0.0.1:$PROXY_PORT$P_CMP" "${RATE[half-cmp-$w]}"
  fi
done
CPU_WATCH=()
if errs=$(nginx_errors "$TMP/peer/error.log" "$TMP/proxy/error.log"); then
  warn "nginx logged errors: $errs"
fi

# ---- 5. callgrind: instructions per GET ---------------------------------------

# the hooks of cg_pair: primed like the wrk run, then N GETs on one connection
cg_prime() { prime_okegw "$1"; }
cg_client() {
  exec timeout 120 python3 "$HERE/keepalive_client.py" "$1" "$2" GET "$CG_PATH" --status 200 --json \
    -H "Authorization: Bearer $TPL_TOKEN" ${CG_ITEMS:+--items "$CG_ITEMS"}
}

CG_RESULT=
if [[ $DO_CALLGRIND == 1 ]]; then
  CG_WHAT="GET offering" CG_PATH=$OFFERING_PATH CG_ITEMS='' cg_pair offering
  CG_WHAT="merged GET components" CG_PATH=$COMPONENTS_PATH CG_ITEMS=2 cg_pair components
  CG_RESULT=1
fi

# ---- report -------------------------------------------------------------------

row() { # LABEL NAME
  printf '%-50s %10s %9s %9s %8s\n' "$1" "${RPS[$2]}" "${P50[$2]}" "${P99[$2]}" "${NON2XX[$2]}"
}
table() { # KEY TITLE
  local k=$1 w wl
  echo
  echo "$2"
  printf '%-50s %10s %9s %9s %8s\n' target req/s "p50 (ms)" "p99 (ms)" non-2xx
  row "(a) peer nginx, direct" "peer-$k"
  for w in $COUNTS; do
    wl=""
    [[ -n $GW_WORKERS || -n $WORKERS_LIST ]] && wl=", workers=$w"
    row "(b) nginx reverse proxy -> peer$wl" "nginx-$k-$w"
    row "(c) okegw -> peer$wl" "okegw-$k-$w"
    [[ $DO_HALF == 1 ]] && row "(d) okegw paced to ${RATE[half-$k-$w]}/s$wl" "half-$k-$w"
    [[ $DO_HALF == 1 ]] && row "(e) nginx proxy paced to the same$wl" "halfnginx-$k-$w"
  done
  for w in $COUNTS; do
    wl=""
    [[ -n $WORKERS_LIST ]] && wl="workers=$w: "
    printf '%sokegw/nginx proxy (c/b): req/s %s, p50 %s, p99 %s\n' "$wl" \
      "$(ratio "${RPS[okegw-$k-$w]}" "${RPS[nginx-$k-$w]}")" \
      "$(ratio "${P50[okegw-$k-$w]}" "${P50[nginx-$k-$w]}")" "$(ratio "${P99[okegw-$k-$w]}" "${P99[nginx-$k-$w]}")"
    if [[ $DO_HALF == 1 ]]; then
      printf '%sp99 at half of okegw'\''s peak: %s ms (paced to %s req/s, reached %s = %s of the peak; p99 at the peak %s ms)\n' \
        "$wl" "${P99[half-$k-$w]}" "${RATE[half-$k-$w]}" "${RPS[half-$k-$w]}" \
        "$(ratio "${RPS[half-$k-$w]}" "${RPS[okegw-$k-$w]}")" "${P99[okegw-$k-$w]}"
      printf '%sp99 of the nginx proxy at that rate: %s ms (okegw/nginx: %s)\n' "$wl" \
        "${P99[halfnginx-$k-$w]}" "$(ratio "${P99[half-$k-$w]}" "${P99[halfnginx-$k-$w]}")"
    fi
  done
  if [[ -n $WORKERS_LIST ]]; then
    # shellcheck disable=SC2086 # the counts, one word each
    set -- $COUNTS
    if (($# > 1)); then
      printf 'okegw req/s, workers=%s vs workers=%s: %s; nginx proxy: %s\n' "${!#}" "$1" \
        "$(ratio "${RPS[okegw-$k-${!#}]}" "${RPS[okegw-$k-$1]}")" "$(ratio "${RPS[nginx-$k-${!#}]}" "${RPS[nginx-$k-$1]}")"
    fi
  fi
}

echo
echo "okegw read benchmark: GETs by the TPL (bearer token), answered by nginx standing in for the suppliers"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency; $(nproc) CPUs; load average at start $LOADAVG"
echo "$("$OKEGW" --version 2>/dev/null | head -1); binary $OKEGW_ID"
echo "nginx (peer, proxy): worker_processes $WORKERS${WORKERS_LIST:+ (the proxy: each of $WORKERS_LIST)}; $WORKERS_NOTE"
table off "(i) GET $OFFERING_PATH: a zitting okegw routes to its TA; the TA answers the $(wc -c <"$OFFERING_BODY") byte offering"
table cmp "(ii) GET $COMPONENTS_PATH: okegw asks both TAs, merges and sorts (2 items); nginx proxies TA 1's page (1 item)"
echo
echo "CPU (user+sys of each process tree, % of the run; 100% = one CPU):"
for k in off cmp; do
  printf '  %-14s %s\n' "(a) peer-$k" "${CPU[peer-$k]}"
  for w in $COUNTS; do
    for t in nginx okegw half halfnginx; do
      [[ -n ${CPU[$t-$k-$w]:-} ]] && printf '  %-14s %s\n' "$t-$k-$w" "${CPU[$t-$k-$w]}"
    done
  done
done
if [[ -n $CG_RESULT ]]; then
  for k in offering components; do
    printf 'callgrind: okegw instructions per %-22s = %s  (Ir %s with %d GETs, %s with %d; (diff)/%d)\n' \
      "$([[ $k == offering ]] && echo "GET offering" || echo "merged GET components")" "${CG_PER[$k]}" \
      "${CG_IR[$k-$((CG_BASE + CG_N))]}" $((CG_BASE + CG_N)) "${CG_IR[$k-$CG_BASE]}" "$CG_BASE" "$CG_N"
  done
else
  echo "callgrind: skipped (BENCH_CALLGRIND=0)"
fi
echo "elapsed: $((SECONDS - T0)) s"

OK=1

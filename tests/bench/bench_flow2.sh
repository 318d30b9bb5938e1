#!/usr/bin/env bash
# Flow-2 throughput/latency benchmark of okegw against nginx, plus a callgrind
# figure (instructions per request). See tests/bench/README.md.
#
#   tests/bench/bench_flow2.sh
#
# Environment (all optional):
#   OKEGW              okegw binary (default: build/okegw under the repo root)
#   BENCH_DURATION     wrk -d per target          (default 10s)
#   BENCH_CONNECTIONS  wrk -c                     (default 32)
#   BENCH_THREADS      wrk -t                     (default 2)
#   BENCH_WARMUP       unmeasured wrk run per target before the measured one (default 1s; 0 = none)
#   BENCH_CG_REQUESTS  the N of the callgrind figure (default 200; runs with 20 and 20+N)
#   BENCH_CALLGRIND    0 skips the callgrind part (default 1)
#   BENCH_WORKERS      nginx worker_processes (peer, proxy) and okegw's [gateway] workers
#                      when the binary has that key (default: nproc)
#   BENCH_TIMEOUT      hard limit for the whole run in seconds (default 170)
#   BENCH_KEEP         1 keeps the temp dir (logs, confs, callgrind files); it is
#                      always kept when the run fails
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
CG_N=${BENCH_CG_REQUESTS:-200}
CG_BASE=20
DO_CALLGRIND=${BENCH_CALLGRIND:-1}
TIMEOUT=${BENCH_TIMEOUT:-170}
KEEP=${BENCH_KEEP:-0}

COMPONENT_ID=d38a7c5e-0f1b-4e6d-a2c9-5e1b3d7f9a6a
OFFERING_ID=8557ada3-553e-58c2-b4e2-f69f35e91c78
ASSOCIATION_ID=0f57a72a-7f7d-5cea-87ec-6245bd3a2363
ASSOC_PATH=/ooapi/associations/$ASSOCIATION_ID

# shellcheck source=lib.sh
. "$HERE/lib.sh"
bench_traps
bench_workers

# ---- prerequisites ----------------------------------------------------------

bench_prerequisites common_get_service_metadata_response.json flow2_put_offering_request.json \
  flow2_put_association_student_request.json

bench_tmpdir flow2
cp "$FIXTURES/common_get_service_metadata_response.json" "$TMP/metadata.json" || die "cannot copy the service metadata"
okegw_workers_probe

# ---- bodies -----------------------------------------------------------------

ASSOC_BODY=$TMP/association.json
OFFERING_BODY=$TMP/offering.json
cp "$FIXTURES/flow2_put_association_student_request.json" "$ASSOC_BODY"
export BENCH_BODY_FILE=$ASSOC_BODY # read by flow2_put.lua
python3 - "$FIXTURES/flow2_put_offering_request.json" "$OFFERING_BODY" "$COMPONENT_ID" "$OFFERING_ID" <<'EOF' ||
import json, sys
src, dst, component, offering = sys.argv[1:]
with open(src) as f:
    o = json.load(f)
o["component"] = component
o["offeringId"] = offering
with open(dst, "w") as f:
    json.dump(o, f, indent=2)
EOF
  die "cannot write the offering body"
python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); sys.exit(0 if a["associationId"]==sys.argv[2] and a["offering"]==sys.argv[3] else 1)' \
  "$ASSOC_BODY" "$ASSOCIATION_ID" "$OFFERING_ID" || die "the association fixture does not match the expected ids"

# ---- 1, 2. the supplier stand-in (nginx) and nginx as a plain proxy -----------

read -r PEER_PORT PROXY_PORT <<<"$(free_ports 2)"
[[ -n ${PROXY_PORT:-} ]] || die "cannot find free ports"

COMPONENTS_PAGE='{"pageSize":250,"pageNumber":1,"hasPreviousPage":false,"hasNextPage":false,"totalPages":1,"items":[{"componentId":"'$COMPONENT_ID'","primaryCode":{"codeType":"componentCode","code":"BENCH-1"},"componentType":"test","name":[{"language":"nl-NL","value":"Bench toets"}],"abbreviation":"BENCH","otherCodes":[{"codeType":"x-testProvider","code":"Bench"}],"organization":"fcc36869-ce45-58e7-95ec-947878aef3b2"}]}'

mkdir -p "$TMP/peer" "$TMP/proxy"
{
  nginx_common "$TMP/peer"
  echo "http {"
  nginx_http_common "$TMP/peer"
  cat <<EOF
  server {
    listen 127.0.0.1:$PEER_PORT;
    location /ooapi/components {
      default_type application/json;
      return 200 '$COMPONENTS_PAGE';
    }
    # GET {base}/: the service metadata okegw reads from each peer at start
    location ~ ^/ooapi/\$ {
      default_type application/json;
      root $TMP;
      try_files /metadata.json =500;
    }
    # PUT /ooapi/offerings/..., PUT /ooapi/associations/...: 200, empty body.
    # return discards (reads) the request body, so keep-alive stays in sync.
    location / {
      return 200 '';
    }
  }
}
EOF
} >"$TMP/peer/nginx.conf"
start_peer_and_proxy ""

# the peer and the proxy answer the benchmark request, and keep-alive survives a
# PUT body (two PUTs on one curl connection, then a GET of the page)
for port in "$PEER_PORT" "$PROXY_PORT"; do
  out=$(curl -sS --max-time 10 -H 'Expect:' -o /dev/null -w '%{http_code} %{num_connects}\n' \
    -X PUT -H 'Content-Type: application/json' --data-binary "@$ASSOC_BODY" "http://127.0.0.1:$port$ASSOC_PATH" \
    --next -sS --max-time 10 -H 'Expect:' -o /dev/null -w '%{http_code} %{num_connects}\n' \
    -X PUT -H 'Content-Type: application/json' --data-binary "@$OFFERING_BODY" "http://127.0.0.1:$port/ooapi/offerings/$OFFERING_ID" \
    --next -sS --max-time 10 -o "$TMP/page.json" -w '%{http_code} %{num_connects}\n' \
    "http://127.0.0.1:$port/ooapi/components?componentType=test" 2>>"$TMP/curl.err")
  [[ $out == $'200 1\n200 0\n200 0' ]] || die "127.0.0.1:$port: PUT/PUT/GET on one connection gave [${out//$'\n'/, }] (want 200 1, 200 0, 200 0)"
  python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); sys.exit(0 if p["items"][0]["componentId"]==sys.argv[2] else 1)' \
    "$TMP/page.json" "$COMPONENT_ID" || die "127.0.0.1:$port: the components page is not the expected JSON"
done
# a curl --data (not --data-binary) PUT as well, as a client would send it
st=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X PUT --data "@$ASSOC_BODY" "http://127.0.0.1:$PEER_PORT$ASSOC_PATH")
is_2xx "$st" || die "curl -X PUT --data @file to the peer gave $st"
if errs=$(nginx_errors "$TMP/peer/error.log" "$TMP/proxy/error.log"); then
  die "nginx logged errors: $errs"
fi

# ---- 3. okegw -----------------------------------------------------------------

write_okegw_conf() { # DIR
  local d=$1
  mkdir -p "$d"
  {
    conf_gateway "$d/bench.db"
    conf_ooapi peer ta "http://127.0.0.1:$PEER_PORT/ooapi"
  } >"$d/plugins.conf"
  if [[ -n ${MAPPING:-} ]]; then
    printf 'scripts = %s\n' "$MAPPING" >>"$d/plugins.conf"
    sed -i "s|^\[gateway\]|[gateway]\nscripts_lib = $ROOT/scripts/lib|" "$d/plugins.conf"
  fi
}

# prime_okegw PORT: flow 0 (learn the owner), flow-2 offering, one association
prime_okegw() {
  local port=$1 st
  st=$(http_status GET "http://127.0.0.1:$port/ooapi/components?componentType=test")
  [[ $st == 200 ]] || die "okegw GET /ooapi/components gave $st: $(head -c 300 "$TMP/curl.out")"
  grep -q "$COMPONENT_ID" "$TMP/curl.out" || die "okegw's catalogue lacks $COMPONENT_ID: $(head -c 300 "$TMP/curl.out")"
  st=$(http_status PUT "http://127.0.0.1:$port/ooapi/offerings/$OFFERING_ID" "$OFFERING_BODY")
  is_2xx "$st" || die "okegw PUT offering gave $st: $(head -c 300 "$TMP/curl.out")"
  st=$(http_status PUT "http://127.0.0.1:$port$ASSOC_PATH" "$ASSOC_BODY")
  is_2xx "$st" || die "okegw PUT association gave $st: $(head -c 300 "$TMP/curl.out")"
}

start_okegw "$TMP/gw" 15
GW_PID=$OKEGW_PID
GW_PORT=$OKEGW_PORT
log "okegw (pid $GW_PID; $OKEGW_ID) on 127.0.0.1:$GW_PORT"
prime_okegw "$GW_PORT"
log "okegw primed: catalogue has the component, offering and association PUT 2xx"

# ---- 4. wrk -------------------------------------------------------------------

WRK_WHAT=PUT
bench() { # NAME PORT
  local name=$1 url=http://127.0.0.1:$2$ASSOC_PATH st
  st=$(http_status PUT "$url" "$ASSOC_BODY")
  is_2xx "$st" || die "$name: the benchmark request gives $st before the run: $(head -c 300 "$TMP/curl.out")"
  wrk_bench "$name" "$url" "$HERE/flow2_put.lua"
}

CPU_WATCH=("peer nginx=$PEER_PID")
bench peer "$PEER_PORT"
CPU_WATCH=("nginx proxy=$PROXY_PID" "peer nginx=$PEER_PID")
bench nginx "$PROXY_PORT"
CPU_WATCH=("okegw=$GW_PID" "peer nginx=$PEER_PID")
bench okegw "$GW_PORT"

alive "$GW_PID" || die "okegw died during the run: $(tail -5 "$TMP/gw/stderr.log")"
# okegw at warn logs only problems: count them (5xx answers, connector failures)
GW_WARN=$(grep -c '"level":"\(warn\|error\)"' "$TMP/gw/stderr.log")
[[ $GW_WARN == 0 ]] || warn "okegw logged $GW_WARN warn/error lines, e.g.: $(grep -m1 '"level":"\(warn\|error\)"' "$TMP/gw/stderr.log")"
stop_pid "$GW_PID" TERM 15
forget_pid "$GW_PID"
[[ $STOP_RC == 0 ]] || warn "okegw exited with status $STOP_RC on SIGTERM"

# ---- 5. callgrind: instructions per request -----------------------------------

# the hooks of cg_pair: primed like the wrk run, then N association PUTs on one connection
CG_WHAT="association PUTs"
cg_prime() { prime_okegw "$1"; }
cg_client() { exec timeout 120 python3 "$HERE/keepalive_client.py" "$1" "$2" PUT "$ASSOC_PATH" --body "$ASSOC_BODY"; }

CG_RESULT=
if [[ $DO_CALLGRIND == 1 ]]; then
  MAPPING='' cg_pair plain
  MAPPING=$HERE/mapping10 cg_pair mapped
  CG_RESULT=${CG_PER[plain]}
fi

# ---- report -------------------------------------------------------------------

echo
echo "okegw flow-2 benchmark: PUT /ooapi/associations/{new id} per request ($(wc -c <"$ASSOC_BODY") byte JSON body; each a durable push)"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency; $(nproc) CPUs; load average at start $LOADAVG"
echo "$("$OKEGW" --version 2>/dev/null | head -1); binary $OKEGW_ID"
echo "nginx (peer, proxy): worker_processes $WORKERS; $WORKERS_NOTE"
echo
printf '%-34s %12s %12s %8s\n' target req/s "p99 (ms)" non-2xx
printf '%-34s %12s %12s %8s\n' "(a) peer nginx, direct" "${RPS[peer]}" "${P99[peer]}" "${NON2XX[peer]}"
printf '%-34s %12s %12s %8s\n' "(b) nginx reverse proxy -> peer" "${RPS[nginx]}" "${P99[nginx]}" "${NON2XX[nginx]}"
printf '%-34s %12s %12s %8s\n' "(c) okegw -> peer" "${RPS[okegw]}" "${P99[okegw]}" "${NON2XX[okegw]}"
echo
printf 'okegw / nginx proxy (c/b):  req/s %s   p99 latency %s\n' \
  "$(ratio "${RPS[okegw]}" "${RPS[nginx]}")" "$(ratio "${P99[okegw]}" "${P99[nginx]}")"
echo "CPU (user+sys, % of the run; 100% = one CPU):"
printf '  (a) %s\n  (b) %s\n  (c) %s\n' "${CPU[peer]}" "${CPU[nginx]}" "${CPU[okegw]}"
if [[ -n $CG_RESULT ]]; then
  printf 'callgrind: okegw instructions per association PUT = %s  (Ir %s with %d PUTs, %s with %d; (diff)/%d)\n' \
    "${CG_PER[plain]}" "${CG_IR[plain-$((CG_BASE + CG_N))]}" $((CG_BASE + CG_N)) "${CG_IR[plain-$CG_BASE]}" "$CG_BASE" "$CG_N"
  printf 'callgrind: with the 10-rule Lua mapping (tests/bench/mapping10) = %s  (+%s for the mapping, ratio %s)\n' \
    "${CG_PER[mapped]}" $((CG_PER[mapped] - CG_PER[plain])) "$(ratio "${CG_PER[mapped]}" "${CG_PER[plain]}")"
else
  echo "callgrind: skipped (BENCH_CALLGRIND=0)"
fi
echo "elapsed: $((SECONDS - T0)) s"

OK=1

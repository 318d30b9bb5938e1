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
#   BENCH_TIMEOUT      hard limit for the whole run in seconds (default 170)
#   BENCH_KEEP         1 keeps the temp dir (logs, confs, callgrind files); it is
#                      always kept when the run fails
#
# Only 127.0.0.1 is ever contacted. Every process started here is stopped on
# exit, including on failure, Ctrl-C and the BENCH_TIMEOUT watchdog.

set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
FIXTURES=$ROOT/tests/integration/fixtures

OKEGW=${OKEGW:-$ROOT/build/okegw}
case $OKEGW in /*) ;; *) OKEGW=$ROOT/$OKEGW ;; esac
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

T0=$SECONDS
PIDS=()      # every long-lived process we started, in start order
OK=0         # set to 1 at the very end
WATCHDOG=

log() { printf '[bench %3ds] %s\n' $((SECONDS - T0)) "$*" >&2; }
warn() { printf '[bench %3ds] WARNING: %s\n' $((SECONDS - T0)) "$*" >&2; }
die() {
  printf '[bench %3ds] ERROR: %s\n' $((SECONDS - T0)) "$*" >&2
  exit 1
}

# ---- cleanup ----------------------------------------------------------------

alive() { kill -0 "$1" 2>/dev/null; }

# stop PID: SIGTERM (or $2), wait up to $3 s (default 5), then SIGKILL. Only our
# own pids. STOP_RC: its exit status.
stop_pid() {
  local pid=$1 sig=${2:-TERM} limit=${3:-5} i
  STOP_RC=
  if ! alive "$pid"; then
    wait "$pid" 2>/dev/null
    STOP_RC=$?
    return 0
  fi
  kill -"$sig" "$pid" 2>/dev/null
  for ((i = 0; i < limit * 20; i++)); do
    alive "$pid" || break
    sleep 0.05
  done
  if alive "$pid"; then
    warn "pid $pid did not exit within ${limit}s of SIG$sig; SIGKILL"
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  STOP_RC=$?
  return 0
}

forget_pid() {
  local p keep=()
  for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
  [[ -n $WATCHDOG ]] && stop_pid "$WATCHDOG" TERM 2
  if [[ -n ${TMP:-} && -d $TMP ]]; then
    if [[ $OK == 1 && $KEEP != 1 ]]; then
      rm -rf "$TMP"
    else
      log "temp dir kept: $TMP"
    fi
  fi
  [[ $OK == 1 || $rc != 0 ]] || rc=1
  exit "$rc"
}
trap cleanup EXIT
trap 'warn "interrupted"; exit 130' INT
trap 'warn "terminated (BENCH_TIMEOUT=${TIMEOUT}s watchdog or SIGTERM)"; exit 143' TERM

# run OUTFILE CMD...: run CMD in the background (stdout+stderr to OUTFILE),
# tracked, and wait for it. Keeps traps responsive (bash defers traps while a
# foreground child runs); the redirection is on CMD only, so trap messages
# still reach our stderr.
run() {
  local outfile=$1
  shift
  "$@" >"$outfile" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait "$pid"
  local rc=$?
  forget_pid "$pid"
  return $rc
}

# ---- prerequisites ----------------------------------------------------------

for tool in nginx wrk curl python3 ss; do
  command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install -y nginx-light wrk curl iproute2)"
done
if [[ $DO_CALLGRIND == 1 ]]; then
  command -v valgrind >/dev/null || die "valgrind not found (apt-get install -y valgrind), or set BENCH_CALLGRIND=0"
fi
[[ -x $OKEGW ]] || die "okegw binary not found at $OKEGW (build: cmake -S . -B build && cmake --build build -j2)"
for f in flow2_put_offering_request.json flow2_put_association_student_request.json; do
  [[ -f $FIXTURES/$f ]] || die "fixture missing: $FIXTURES/$f"
done
[[ $CG_N =~ ^[1-9][0-9]*$ ]] || die "BENCH_CG_REQUESTS must be a positive integer"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/okegw-bench-flow2.XXXXXX") || die "mktemp failed"
chmod 755 "$TMP" # nginx workers may run as another user when started by root

# a private copy of the binary: a rebuild during the run cannot change what is measured
cp "$OKEGW" "$TMP/okegw" || die "cannot copy $OKEGW"
OKEGW_ID="$OKEGW, $(date -r "$OKEGW" '+%F %T'), sha256 $(sha256sum "$TMP/okegw" | cut -c1-12)"
OKEGW=$TMP/okegw

# watchdog: SIGTERM to this script after TIMEOUT seconds
(
  trap 'kill $sp 2>/dev/null; wait $sp 2>/dev/null; exit 0' TERM
  sleep "$TIMEOUT" &
  sp=$!
  wait $sp && kill -TERM $$ 2>/dev/null
) &
WATCHDOG=$!

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

# ---- helpers ------------------------------------------------------------------

free_ports() { # N free TCP ports on 127.0.0.1, held open together so they differ
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# http_status METHOD URL [BODY_FILE] -> prints the status code (000 on failure)
http_status() {
  local method=$1 url=$2 body=${3:-} out=$TMP/curl.out
  local args=(-sS -o "$out" -w '%{http_code}' --max-time 30 -X "$method" -H 'Expect:')
  [[ -n $body ]] && args+=(-H 'Content-Type: application/json' --data-binary "@$body")
  curl "${args[@]}" "$url" 2>>"$TMP/curl.err" || true
}

is_2xx() { [[ $1 =~ ^2[0-9][0-9]$ ]]; }

wait_http() { # URL PID LIMIT_S: until anything answers, or PID dies
  local url=$1 pid=$2 limit=$3 i
  for ((i = 0; i < limit * 10; i++)); do
    alive "$pid" || return 1
    curl -s -o /dev/null --max-time 2 "$url" && return 0
    sleep 0.1
  done
  return 1
}

# the TCP port PID listens on (okegw with listen = 127.0.0.1:0): the "listening"
# log line when the log level shows it, otherwise the socket table (log_level =
# warn hides the info-level "listening" line).
listen_port() {
  local pid=$1 errlog=$2 port
  port=$(grep -m1 '"msg":"listening"' "$errlog" 2>/dev/null | grep -o '"port":[0-9]*' | grep -o '[0-9]*$')
  [[ -n $port ]] || port=$(ss -Hltnp 2>/dev/null | grep -F "pid=$pid," | awk '{print $4}' | grep -m1 -o '[0-9]*$')
  [[ -n $port ]] && echo "$port"
}

# ---- 1. the supplier stand-in (nginx) -----------------------------------------

read -r PEER_PORT PROXY_PORT <<<"$(free_ports 2)"
[[ -n ${PROXY_PORT:-} ]] || die "cannot find free ports"

COMPONENTS_PAGE='{"pageSize":250,"pageNumber":1,"hasPreviousPage":false,"hasNextPage":false,"totalPages":1,"items":[{"componentId":"'$COMPONENT_ID'","primaryCode":{"codeType":"componentCode","code":"BENCH-1"},"componentType":"test","name":[{"language":"nl-NL","value":"Bench toets"}],"abbreviation":"BENCH","otherCodes":[{"codeType":"x-testProvider","code":"Bench"}],"organization":"fcc36869-ce45-58e7-95ec-947878aef3b2"}]}'

nginx_common() { # DIR: the parts every instance shares
  local d=$1
  cat <<EOF
worker_processes 1;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
EOF
}

nginx_http_common() {
  local d=$1
  cat <<EOF
  access_log off;
  default_type application/octet-stream;
  client_body_temp_path $d/client_body;
  proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/fastcgi;
  uwsgi_temp_path $d/uwsgi;
  scgi_temp_path $d/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 75s;
  client_max_body_size 1m;
  client_body_buffer_size 64k;
EOF
}

start_nginx() { # NAME: conf in $TMP/NAME/nginx.conf; sets NGINX_PID
  local d=$TMP/$1
  nginx -t -q -p "$d" -c "$d/nginx.conf" -e "$d/error.log" >"$d/test.log" 2>&1 ||
    die "nginx ($1) config test failed: $(cat "$d/test.log")"
  nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" >"$d/stdout.log" 2>&1 &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
}

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
    # PUT /ooapi/offerings/..., PUT /ooapi/associations/...: 200, empty body.
    # return discards (reads) the request body, so keep-alive stays in sync.
    location / {
      return 200 '';
    }
  }
}
EOF
} >"$TMP/peer/nginx.conf"
start_nginx peer
PEER_PID=$NGINX_PID
wait_http "http://127.0.0.1:$PEER_PORT/" "$PEER_PID" 10 ||
  die "the peer nginx did not come up: $(tail -5 "$TMP/peer/error.log" 2>/dev/null)"
log "peer nginx (pid $PEER_PID) on 127.0.0.1:$PEER_PORT"

# ---- 2. nginx as a plain reverse proxy ----------------------------------------

{
  nginx_common "$TMP/proxy"
  echo "http {"
  nginx_http_common "$TMP/proxy"
  cat <<EOF
  upstream peer {
    server 127.0.0.1:$PEER_PORT;
    keepalive 64;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:$PROXY_PORT;
    location / {
      proxy_pass http://peer;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
} >"$TMP/proxy/nginx.conf"
start_nginx proxy
PROXY_PID=$NGINX_PID
wait_http "http://127.0.0.1:$PROXY_PORT/" "$PROXY_PID" 10 ||
  die "the proxy nginx did not come up: $(tail -5 "$TMP/proxy/error.log" 2>/dev/null)"
log "proxy nginx (pid $PROXY_PID) on 127.0.0.1:$PROXY_PORT -> $PEER_PORT"

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
if grep -q '\[\(error\|crit\|alert\|emerg\)\]' "$TMP/peer/error.log" "$TMP/proxy/error.log" 2>/dev/null; then
  die "nginx logged errors: $(grep -h '\[\(error\|crit\|alert\|emerg\)\]' "$TMP/peer/error.log" "$TMP/proxy/error.log" | tail -3)"
fi

# ---- 3. okegw -----------------------------------------------------------------

write_okegw_conf() { # DIR
  local d=$1
  mkdir -p "$d"
  cat >"$d/plugins.conf" <<EOF
; generated by tests/bench/bench_flow2.sh
[gateway]
listen = 127.0.0.1:0
store = $d/bench.db
log_level = warn

[connector peer]
plugin = ooapi
role = ta
phase = live
base_url = http://127.0.0.1:$PEER_PORT/ooapi
timeout_ms = 10000
EOF
  if [[ -n ${MAPPING:-} ]]; then
    printf 'scripts = %s\n' "$MAPPING" >>"$d/plugins.conf"
    sed -i "s|^\[gateway\]|[gateway]\nscripts_lib = $ROOT/scripts/lib|" "$d/plugins.conf"
  fi
}

# start_okegw DIR LIMIT_S [WRAPPER...]: sets OKEGW_PID and OKEGW_PORT
start_okegw() {
  local d=$1 limit=$2 i
  shift 2
  write_okegw_conf "$d"
  (cd "$d" && exec "$@" "$OKEGW" -c "$d/plugins.conf") </dev/null >"$d/stdout.log" 2>"$d/stderr.log" &
  OKEGW_PID=$!
  PIDS+=("$OKEGW_PID")
  OKEGW_PORT=
  for ((i = 0; i < limit * 10; i++)); do
    alive "$OKEGW_PID" || die "okegw exited before listening: $(tail -5 "$d/stderr.log")"
    OKEGW_PORT=$(listen_port "$OKEGW_PID" "$d/stderr.log") && break
    sleep 0.1
  done
  [[ -n $OKEGW_PORT ]] || die "okegw did not listen within ${limit}s: $(tail -5 "$d/stderr.log")"
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

declare -A RPS P99 NON2XX SOCKERR
# to_ms VALUE_WITH_UNIT (wrk prints us, ms, s, m)
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1
    if (f < 0) { print "nan"; exit }
    printf "%.3f", n * f }'
}

bench() { # NAME PORT
  local name=$1 port=$2 url=http://127.0.0.1:$2$ASSOC_PATH out=$TMP/wrk-$1.txt st
  st=$(http_status PUT "$url" "$ASSOC_BODY")
  is_2xx "$st" || die "$name: the benchmark request gives $st before the run: $(head -c 300 "$TMP/curl.out")"
  if [[ $WARMUP != 0 && $WARMUP != 0s ]]; then
    run "$TMP/wrk-$name-warmup.txt" timeout 60 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" \
      -s "$HERE/flow2_put.lua" "$url" ||
      die "$name: wrk warm-up failed: $(tail -3 "$TMP/wrk-$name-warmup.txt")"
  fi
  log "wrk $name: -t$THREADS -c$CONNECTIONS -d$DURATION PUT $url"
  run "$out" timeout 120 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
    -s "$HERE/flow2_put.lua" "$url" || die "$name: wrk failed: $(tail -5 "$out")"
  sed 's/^/    /' "$out" >&2
  RPS[$name]=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  P99[$name]=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
  NON2XX[$name]=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
  NON2XX[$name]=${NON2XX[$name]:-0}
  SOCKERR[$name]=$(grep -m1 'Socket errors:' "$out" | sed 's/^ *Socket errors: *//')
  [[ -n ${RPS[$name]} && ${P99[$name]} != nan && -n ${P99[$name]} ]] || die "$name: cannot read wrk's output"
  [[ ${NON2XX[$name]} == 0 ]] ||
    warn "$name: ${NON2XX[$name]} responses were not 2xx/3xx (wrk: Non-2xx or 3xx responses); its figures are not comparable"
  [[ -z ${SOCKERR[$name]} ]] || warn "$name: wrk socket errors: ${SOCKERR[$name]}"
}

bench peer "$PEER_PORT"
bench nginx "$PROXY_PORT"
bench okegw "$GW_PORT"

alive "$GW_PID" || die "okegw died during the run: $(tail -5 "$TMP/gw/stderr.log")"
# okegw at warn logs only problems: count them (5xx answers, connector failures)
GW_WARN=$(grep -c '"level":"\(warn\|error\)"' "$TMP/gw/stderr.log")
[[ $GW_WARN == 0 ]] || warn "okegw logged $GW_WARN warn/error lines, e.g.: $(grep -m1 '"level":"\(warn\|error\)"' "$TMP/gw/stderr.log")"
stop_pid "$GW_PID" TERM 15
forget_pid "$GW_PID"
[[ $STOP_RC == 0 ]] || warn "okegw exited with status $STOP_RC on SIGTERM"

# ---- 5. callgrind: instructions per request -----------------------------------

cg_total() { # OUTFILE -> total Ir: the totals: line (valgrind's "I refs"), else summary:
  awk '/^totals:/ {t = $2} /^summary:/ {s = $2} END {print (t != "" ? t : s)}' "$1"
}

# cg_pair LABEL: instructions per association PUT, from a run with CG_BASE and
# one with CG_BASE + CG_N requests (the difference cancels start-up and exit)
declare -A CG_IR CG_PER
cg_pair() {
  local label=$1 n d
  for n in "$CG_BASE" $((CG_BASE + CG_N)); do
    d=$TMP/cg-$label-$n
    mkdir -p "$d"
    log "callgrind run ($label) with $n association PUTs"
    start_okegw "$d" 60 valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" --log-file="$d/valgrind.log"
    prime_okegw "$OKEGW_PORT" # 3 requests, the same in both runs
    run "$d/client.log" timeout 120 python3 "$HERE/flow2_client.py" "$OKEGW_PORT" "$n" "$ASSOC_PATH" "$ASSOC_BODY" 60 ||
      die "callgrind run ($label, $n): $(tail -3 "$d/client.log")"
    stop_pid "$OKEGW_PID" TERM 60 # callgrind writes its file at exit
    forget_pid "$OKEGW_PID"
    [[ $STOP_RC == 0 ]] || warn "okegw under callgrind exited with status $STOP_RC on SIGTERM"
    [[ -s $d/cg.out ]] || die "callgrind wrote no $d/cg.out: $(tail -5 "$d/valgrind.log")"
    CG_IR[$label-$n]=$(cg_total "$d/cg.out")
    [[ ${CG_IR[$label-$n]} =~ ^[0-9]+$ ]] || die "no summary/totals line in $d/cg.out"
    log "  total Ir = ${CG_IR[$label-$n]}"
  done
  CG_PER[$label]=$(awk -v a="${CG_IR[$label-$CG_BASE]}" -v b="${CG_IR[$label-$((CG_BASE + CG_N))]}" \
    -v n="$CG_N" 'BEGIN {printf "%.0f", (b - a) / n}')
}

CG_RESULT=
if [[ $DO_CALLGRIND == 1 ]]; then
  MAPPING= cg_pair plain
  MAPPING=$HERE/mapping10 cg_pair mapped
  CG_RESULT=${CG_PER[plain]}
fi

# ---- report -------------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.3f", a / b }'; }

echo
echo "okegw flow-2 benchmark: PUT $ASSOC_PATH ($(wc -c <"$ASSOC_BODY") byte JSON body)"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency; $(nproc) CPUs"
echo "$("$OKEGW" --version 2>/dev/null | head -1); binary $OKEGW_ID"
echo
printf '%-34s %12s %12s %8s\n' target req/s "p99 (ms)" non-2xx
printf '%-34s %12s %12s %8s\n' "(a) peer nginx, direct" "${RPS[peer]}" "${P99[peer]}" "${NON2XX[peer]}"
printf '%-34s %12s %12s %8s\n' "(b) nginx reverse proxy -> peer" "${RPS[nginx]}" "${P99[nginx]}" "${NON2XX[nginx]}"
printf '%-34s %12s %12s %8s\n' "(c) okegw -> peer" "${RPS[okegw]}" "${P99[okegw]}" "${NON2XX[okegw]}"
echo
printf 'okegw / nginx proxy (c/b):  req/s %s   p99 latency %s\n' \
  "$(ratio "${RPS[okegw]}" "${RPS[nginx]}")" "$(ratio "${P99[okegw]}" "${P99[nginx]}")"
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

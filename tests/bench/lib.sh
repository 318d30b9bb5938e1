# shellcheck shell=bash disable=SC2034,SC2153 # globals shared with the scripts that source it
# Shell functions shared by the okegw benchmarks (bench_flow2.sh, bench_outbox.sh,
# bench_read.sh, bench_memory.sh).
# Sourced, never run:
#
#   HERE=...; TIMEOUT=...; KEEP=...   # read by the functions below
#   . "$HERE/lib.sh"             # sets ROOT, FIXTURES, and OKEGW (default build/okegw) as a full path
#   bench_traps                  # cleanup on exit, Ctrl-C, SIGTERM
#   bench_workers                # WORKERS, WORKERS_LIST (BENCH_WORKERS, BENCH_WORKERS_LIST)
#   bench_tmpdir NAME            # TMP, a private copy of $OKEGW, the watchdog
#   okegw_workers_probe          # does this okegw take [gateway] workers? (after bench_tmpdir)
#
# What every bench script relies on:
# - Only 127.0.0.1 is contacted.
# - Every long-lived process is started in the background and its pid kept in
#   PIDS; cleanup stops them (SIGTERM, then SIGKILL) in reverse start order on
#   any exit, including failure, Ctrl-C and the BENCH_TIMEOUT watchdog. Only
#   those pids are ever signalled.
# - The temp dir is removed after a successful run (OK=1) and kept, with its
#   path printed, after a failed one or with BENCH_KEEP=1.
#
# Hooks the script defines before using start_okegw / cg_pair:
#   write_okegw_conf DIR          writes DIR/plugins.conf (store in DIR)
#   cg_prime PORT                 the requests before the measured ones (the same in both runs)
#   cg_client PORT N              sends the N measured requests, exits non-zero on any
#                                 failure; runs in the background under `run`, so it should
#                                 `exec` its client (then stop_pid reaches the client itself)

ROOT=$(cd "$HERE/../.." && pwd)
FIXTURES=$ROOT/tests/integration/fixtures
OKEGW=${OKEGW:-$ROOT/build/okegw} # relative paths are from the repository root
case $OKEGW in /*) ;; *) OKEGW=$ROOT/$OKEGW ;; esac

T0=$SECONDS
PIDS=()   # every long-lived process we started, in start order
OK=0      # set to 1 at the very end
WATCHDOG=
CLEAN_DIRS=() # more dirs of ours outside TMP, removed or kept like TMP

log() { printf '[bench %3ds] %s\n' $((SECONDS - T0)) "$*" >&2; }
warn() { printf '[bench %3ds] WARNING: %s\n' $((SECONDS - T0)) "$*" >&2; }
die() {
  printf '[bench %3ds] ERROR: %s\n' $((SECONDS - T0)) "$*" >&2
  exit 1
}

# ---- processes and cleanup ------------------------------------------------------

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
  local d
  for d in "${CLEAN_DIRS[@]}" "${TMP:-}"; do
    [[ -n $d && -d $d ]] || continue
    if [[ $OK == 1 && $KEEP != 1 ]]; then
      rm -rf "$d"
    else
      log "temp dir kept: $d"
    fi
  done
  [[ $OK == 1 || $rc != 0 ]] || rc=1
  exit "$rc"
}

bench_traps() {
  trap cleanup EXIT
  trap 'warn "interrupted"; exit 130' INT
  trap 'warn "terminated (BENCH_TIMEOUT=${TIMEOUT}s watchdog or SIGTERM)"; exit 143' TERM
}

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

# bench_prerequisites FIXTURE...: the tools, valgrind when the callgrind part
# runs, the okegw binary, the named fixtures (under $FIXTURES) and CG_N.
bench_prerequisites() {
  local tool f
  for tool in nginx wrk curl python3 ss; do
    command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install -y nginx-light wrk curl iproute2)"
  done
  if [[ $DO_CALLGRIND == 1 ]]; then
    command -v valgrind >/dev/null || die "valgrind not found (apt-get install -y valgrind), or set BENCH_CALLGRIND=0"
  fi
  [[ -x $OKEGW ]] || die "okegw binary not found at $OKEGW (build: cmake -S . -B build && cmake --build build -j2)"
  for f in "$@"; do
    [[ -f $FIXTURES/$f ]] || die "fixture missing: $FIXTURES/$f"
  done
  [[ $CG_N =~ ^[1-9][0-9]*$ ]] || die "BENCH_CG_REQUESTS must be a positive integer"
}

# bench_tmpdir NAME: the temp dir TMP, a private copy of $OKEGW in it (a rebuild
# during the run cannot change what is measured; OKEGW then names the copy and
# OKEGW_ID the original: path, date, sha256), LOADAVG (1, 5, 15 min) and the watchdog (SIGTERM to this
# script after TIMEOUT seconds).
bench_tmpdir() {
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/okegw-bench-$1.XXXXXX") || die "mktemp failed"
  chmod 755 "$TMP" # nginx workers may run as another user when started by root
  cp "$OKEGW" "$TMP/okegw" || die "cannot copy $OKEGW"
  OKEGW_ID="$OKEGW, $(date -r "$OKEGW" '+%F %T'), sha256 $(sha256sum "$TMP/okegw" | cut -c1-12)"
  OKEGW=$TMP/okegw
  # what else the machine was doing when the run began (its figures depend on it)
  LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
  (
    trap 'kill $sp 2>/dev/null; wait $sp 2>/dev/null; exit 0' TERM
    sleep "$TIMEOUT" &
    sp=$!
    wait $sp && kill -TERM $$ 2>/dev/null
  ) &
  WATCHDOG=$!
}

# ---- worker counts ----------------------------------------------------------------

# bench_workers: WORKERS (BENCH_WORKERS, default nproc): nginx's worker_processes
# (peer and proxy) and okegw's [gateway] workers when the binary has that key;
# WORKERS_LIST (BENCH_WORKERS_LIST, e.g. "1 2"): the counts a script measures okegw
# and the nginx proxy with in turn (empty: WORKERS only).
bench_workers() {
  local n
  WORKERS=${BENCH_WORKERS:-$(nproc)}
  [[ $WORKERS =~ ^[1-9][0-9]*$ ]] || die "BENCH_WORKERS must be a positive integer"
  WORKERS_LIST=${BENCH_WORKERS_LIST:-}
  for n in $WORKERS_LIST; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_WORKERS_LIST: '$n' is not a positive integer"
  done
  NGINX_WORKERS=$WORKERS
}

# okegw_workers_probe: does this okegw take `workers` in [gateway]? `okegw -t` on a
# minimal conf with `workers = 1`. Sets OKEGW_HAS_WORKERS (1/0), GW_WORKERS (the
# count start_okegw writes, WORKERS) and WORKERS_NOTE (a header line). Without
# the key, WORKERS_LIST is dropped: okegw runs once, without it.
okegw_workers_probe() {
  local d=$TMP/workers-probe
  mkdir -p "$d"
  printf '[gateway]\nlisten = 127.0.0.1:0\nstore = %s/probe.db\nworkers = 1\n' "$d" >"$d/plugins.conf"
  if "$OKEGW" -t -c "$d/plugins.conf" >"$d/out.log" 2>&1; then
    OKEGW_HAS_WORKERS=1
    GW_WORKERS=$WORKERS
    WORKERS_NOTE="okegw: workers = $WORKERS in [gateway]"
    [[ -z $WORKERS_LIST ]] || WORKERS_NOTE="okegw and the nginx proxy: workers = each of $WORKERS_LIST in turn"
  elif grep -q "unknown key 'workers'" "$d/out.log"; then
    OKEGW_HAS_WORKERS=0
    GW_WORKERS=
    # shellcheck disable=SC2016 # the backquotes are meant literally
    WORKERS_NOTE='okegw: one event loop (this binary has no `workers` key)'
    if [[ -n $WORKERS_LIST ]]; then
      warn "BENCH_WORKERS_LIST=\"$WORKERS_LIST\" ignored: this okegw has no \`workers\` key"
      WORKERS_LIST=
    fi
  else
    die "okegw -t on a minimal conf failed: $(tail -3 "$d/out.log")"
  fi
  log "$WORKERS_NOTE; nginx: worker_processes $WORKERS"
}

# ---- HTTP helpers -----------------------------------------------------------------

free_ports() { # N free TCP ports on 127.0.0.1, held open together so they differ
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# http_status METHOD URL [BODY_FILE [HEADER...]] -> prints the status code (000
# on failure); the answer's body is in $TMP/curl.out
http_status() {
  local method=$1 url=$2 body=${3:-} out=$TMP/curl.out h
  local args=(-sS -o "$out" -w '%{http_code}' --max-time 30 -X "$method" -H 'Expect:')
  [[ -n $body ]] && args+=(-H 'Content-Type: application/json' --data-binary "@$body")
  for h in "${@:4}"; do args+=(-H "$h"); done
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

wait_line() { # FILE REGEX PID: until a line of FILE matches (grep), or PID dies, or 60 s
  local i
  for ((i = 0; i < 600; i++)); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    alive "$3" || break
    sleep 0.1
  done
  grep -q "$2" "$1" 2>/dev/null
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

# ---- nginx ------------------------------------------------------------------------

nginx_common() { # DIR [WORKERS]: the parts every instance shares; worker_processes is
  local d=$1 #        WORKERS, else NGINX_WORKERS, else WORKERS (BENCH_WORKERS), else 1
  cat <<EOF
worker_processes ${2:-${NGINX_WORKERS:-${WORKERS:-1}}};
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

# nginx_proxy_conf DIR LISTEN_PORT UPSTREAM_PORT: a plain reverse proxy (HTTP/1.1,
# upstream keep-alive), the reference for "a good reverse proxy on this machine"
nginx_proxy_conf() {
  local d=$1
  nginx_common "$d"
  echo "http {"
  nginx_http_common "$d"
  cat <<EOF
  upstream peer {
    server 127.0.0.1:$3;
    keepalive 64;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:$2;
    location / {
      proxy_pass http://peer;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
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

# start_peer_and_proxy [WHAT]: the peer nginx (its $TMP/peer/nginx.conf written
# already) and, in front of it, nginx as a plain reverse proxy; sets PEER_PID and
# PROXY_PID. WHAT is appended to the peer's log line.
start_peer_and_proxy() {
  start_nginx peer
  PEER_PID=$NGINX_PID
  wait_http "http://127.0.0.1:$PEER_PORT/" "$PEER_PID" 10 ||
    die "the peer nginx did not come up: $(tail -5 "$TMP/peer/error.log" 2>/dev/null)"
  log "peer nginx (pid $PEER_PID, ${NGINX_WORKERS:-${WORKERS:-1}} workers) on 127.0.0.1:$PEER_PORT${1:-}"
  start_proxy ""
}

# start_proxy [WORKERS]: (re)starts the proxy nginx (PROXY_PORT -> PEER_PORT) with
# WORKERS worker processes (default: NGINX_WORKERS, WORKERS); sets PROXY_PID
start_proxy() {
  local n=${1:-${NGINX_WORKERS:-${WORKERS:-1}}}
  if [[ -n ${PROXY_PID:-} ]]; then
    stop_pid "$PROXY_PID" TERM 10
    forget_pid "$PROXY_PID"
    PROXY_PID=
  fi
  NGINX_WORKERS=$n nginx_proxy_conf "$TMP/proxy" "$PROXY_PORT" "$PEER_PORT" >"$TMP/proxy/nginx.conf"
  start_nginx proxy
  PROXY_PID=$NGINX_PID
  wait_http "http://127.0.0.1:$PROXY_PORT/" "$PROXY_PID" 10 ||
    die "the proxy nginx did not come up: $(tail -5 "$TMP/proxy/error.log" 2>/dev/null)"
  log "proxy nginx (pid $PROXY_PID, $n workers) on 127.0.0.1:$PROXY_PORT -> $PEER_PORT"
}

nginx_errors() { # FILE...: fails (prints the last lines) when nginx logged errors
  if grep -q '\[\(error\|crit\|alert\|emerg\)\]' "$@" 2>/dev/null; then
    grep -h '\[\(error\|crit\|alert\|emerg\)\]' "$@" | tail -3
    return 0
  fi
  return 1
}

# ---- the outbox setup (bench_outbox.sh, bench_memory.sh) ---------------------------

# outbox_bodies: ASSOCIATIONS deelnames of one zitting (the student fixture, each its
# own associationId), the offering, and the flow-3 result the TA PATCHes onto each
# of them; the components page the TA serves is the first component of the flow-0
# fixture. Reads FIXTURES COMPONENT_ID OFFERING_ID ASSOCIATIONS; sets BODIES
# IDS_FILE RESULT_BODY OFFERING_BODY PAGE and the array IDS.
outbox_bodies() {
  BODIES=$TMP/bodies
  IDS_FILE=$TMP/ids.txt
  RESULT_BODY=$TMP/result.json
  OFFERING_BODY=$TMP/offering.json
  PAGE=$TMP/components.json
  mkdir -p "$BODIES"
  python3 - "$FIXTURES" "$BODIES" "$IDS_FILE" "$OFFERING_BODY" "$RESULT_BODY" "$COMPONENT_ID" \
    "$OFFERING_ID" "$ASSOCIATIONS" "$PAGE" <<'EOF' ||
import json, os, shutil, sys, uuid
fixtures, bodies, ids_file, offering_body, result_body, component, offering, n, page = sys.argv[1:]
with open(os.path.join(fixtures, "flow0_get_components_response.json")) as f:
    p = json.load(f)
c = p["items"][0]
c["componentId"] = component
# the gateway stamps x-testSystem itself
c["otherCodes"] = [x for x in c.get("otherCodes", []) if x.get("codeType") != "x-testSystem"]
p.update(items=[c], pageSize=250, totalPages=1, hasNextPage=False)
with open(page, "w") as f:
    json.dump(p, f)
with open(os.path.join(fixtures, "flow2_put_offering_request.json")) as f:
    o = json.load(f)
o["component"] = component
o["offeringId"] = offering
with open(offering_body, "w") as f:
    json.dump(o, f, indent=2)
with open(os.path.join(fixtures, "flow2_put_association_student_request.json")) as f:
    a = json.load(f)
ns = uuid.UUID(offering)
ids = [str(uuid.uuid5(ns, "okegw-bench-deelname-%d" % i)) for i in range(int(n))]
for i, aid in enumerate(ids):
    a["associationId"] = aid
    a["offering"] = offering
    with open(os.path.join(bodies, "%d.json" % i), "w") as f:
        json.dump(a, f, indent=2)
with open(ids_file, "w") as f:
    f.write("".join(aid + "\n" for aid in ids))
shutil.copyfile(os.path.join(fixtures, "examples", "flow3_patch_association_result_request.json"),
                result_body)
EOF
    die "cannot write the bodies"
  mapfile -t IDS <"$IDS_FILE"
  ((${#IDS[@]} == ASSOCIATIONS)) || die "expected $ASSOCIATIONS ids in $IDS_FILE, got ${#IDS[@]}"
}

# outbox_peer_server PORT: the nginx server block standing in for the TA under /ta/
# and the planning system (TPL) under /tpl/: everything okegw sends answers 200 with
# an empty body, except a PATCH at the TA (a result must go to the TPL: 409, visible
# as non-2xx should okegw send it the wrong way); /tpl503/ is a TPL answering every
# push 503. GET {base}/ answers the service metadata ($TMP/metadata.json).
outbox_peer_server() {
  cat <<EOF
  server {
    listen 127.0.0.1:$1;
    location ~ ^/(ta|tpl|tpl503)/ooapi/\$ {
      default_type application/json;
      root $TMP;
      try_files /metadata.json =500;
    }
    location = /ta/ooapi/components {
      default_type application/json;
      alias $PAGE;
    }
    # return discards (reads) the request body, so keep-alive stays in sync
    location /ta/ {
      if (\$request_method = PATCH) {
        return 409 '';
      }
      return 200 '';
    }
    location /tpl/ {
      return 200 '';
    }
    location /tpl503/ {
      return 503 '';
    }
    location / {
      return 404 '';
    }
  }
EOF
}

# conf_gateway STORE_DB: the [gateway] section of every benchmark's okegw
conf_gateway() {
  printf '; generated by tests/bench/%s\n[gateway]\nlisten = 127.0.0.1:0\nstore = %s\nlog_level = warn\n' \
    "$(basename "$0")" "$1"
}

# conf_ooapi NAME ROLE BASE_URL [TOKEN]: a live ooapi connector (with TOKEN as its
# inbound_token)
conf_ooapi() {
  printf '\n[connector %s]\nplugin = ooapi\nrole = %s\nphase = live\nbase_url = %s\ntimeout_ms = 10000\n' \
    "$1" "$2" "$3"
  [[ -z ${4:-} ]] || printf 'inbound_token = %s\n' "$4"
}

# outbox_okegw_conf DIR TPL_BASE GATEWAY_LINES TPL_LINES: okegw with connectors ta
# (role ta, /ta/ooapi) and planning (role tpl, TPL_BASE/ooapi), each with its
# inbound_token; the store is DIR's name under STORES, or STORE_URI when set (a
# PostgreSQL database).
outbox_okegw_conf() {
  local d=$1 sd=$STORES/${1##*/}
  mkdir -p "$d" "$sd"
  {
    conf_gateway "${STORE_URI:-$sd/bench.db}"
    [[ -z $3 ]] || printf '%s\n' "$3"
    conf_ooapi ta ta "http://127.0.0.1:$PEER_PORT/ta/ooapi" "$TA_TOKEN"
    conf_ooapi planning tpl "http://127.0.0.1:$PEER_PORT$2/ooapi" "$TPL_TOKEN"
    [[ -z $4 ]] || printf '%s\n' "$4"
  } >"$d/plugins.conf"
}

# outbox_prime PORT N: the TPL plans a zitting at the TA with N deelnames (flow 0,
# flow-2 offering, N flow-2 association PUTs, each delivered to the TA), so the
# TA may PATCH a result onto each of them (the return route)
outbox_prime() {
  local port=$1 n=$2 st i args=() codes bad
  st=$(http_status GET "http://127.0.0.1:$port/ooapi/components?componentType=test" "" "Authorization: Bearer $TPL_TOKEN")
  [[ $st == 200 ]] || die "okegw GET /ooapi/components gave $st: $(head -c 300 "$TMP/curl.out")"
  grep -q "$COMPONENT_ID" "$TMP/curl.out" || die "okegw's catalogue lacks $COMPONENT_ID: $(head -c 300 "$TMP/curl.out")"
  st=$(http_status PUT "http://127.0.0.1:$port/ooapi/offerings/$OFFERING_ID" "$OFFERING_BODY" "Authorization: Bearer $TPL_TOKEN")
  is_2xx "$st" || die "okegw PUT offering gave $st: $(head -c 300 "$TMP/curl.out")"
  # the N deelnames on one curl connection
  for ((i = 0; i < n; i++)); do
    ((i == 0)) || args+=(--next)
    args+=(-sS --max-time 30 -H 'Expect:' -o /dev/null -w '%{http_code}\n' -X PUT
      -H 'Content-Type: application/json' -H "Authorization: Bearer $TPL_TOKEN"
      --data-binary "@$BODIES/$i.json" "http://127.0.0.1:$port/ooapi/associations/${IDS[i]}")
  done
  codes=$(curl "${args[@]}" 2>>"$TMP/curl.err")
  bad=$(grep -cv '^20[01]$' <<<"$codes")
  [[ $(grep -c . <<<"$codes") == "$n" && $bad == 0 ]] ||
    die "okegw PUT association: want $n answers 200/201, got: $(sort <<<"$codes" | uniq -c | tr '\n' ' ')"
}

# ---- okegw ------------------------------------------------------------------------

# start_okegw DIR LIMIT_S [WRAPPER...]: writes the conf (hook write_okegw_conf, plus
# `workers = GW_WORKERS` in [gateway] when the probe found the key), starts okegw
# in DIR, sets OKEGW_PID and OKEGW_PORT
start_okegw() {
  local d=$1 limit=$2 i
  shift 2
  write_okegw_conf "$d"
  if [[ ${OKEGW_HAS_WORKERS:-0} == 1 && -n ${GW_WORKERS:-} ]]; then
    sed -i "/^\[gateway\]/a workers = $GW_WORKERS" "$d/plugins.conf"
  fi
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

# ---- CPU split ----------------------------------------------------------------------

# CPU_WATCH: "LABEL=PID" entries; wrk_bench reads the user+sys CPU time of each
# one's process tree (the pid, its descendants, all their threads; /proc/PID/stat
# utime+stime) before and after its measured run, and wrk's own as the CPU time
# of this shell's reaped children in between (cutime+cstime of $BASHPID: wrk
# under timeout, nothing else runs then). CPU[NAME]: the split, each as a % of
# the run's wall time (100 % = one CPU busy all along), and what the rest of the
# machine used meanwhile (its busy time in /proc/stat minus ours): other jobs
# on a shared machine make the figures move.
CPU_WATCH=()
declare -A CPU
CLK_TCK=$(getconf CLK_TCK 2>/dev/null) || CLK_TCK=100

tree_ticks() { # PID...: utime+stime clock ticks of each pid's process tree, then the
  #             busy ticks of the whole machine (/proc/stat), one line
  python3 - "$@" <<'EOF'
import os, sys
procs = {}
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        with open("/proc/%s/stat" % p) as f:
            s = f.read()
    except OSError:
        continue
    r = s[s.rindex(")") + 2:].split()  # r[0] is field 3 (state)
    procs[int(p)] = (int(r[1]), int(r[11]) + int(r[12]))
def under(pid, root):
    for _ in range(64):
        if pid == root:
            return True
        if pid not in procs or pid <= 1:
            return False
        pid = procs[pid][0]
    return False
with open("/proc/stat") as f:
    cpu = [int(x) for x in f.readline().split()[1:]]
# user + nice + system: what processes ran (irq/softirq time, loopback traffic
# mostly, is partly in the processes' own stime already; steal is not ours)
busy = cpu[0] + cpu[1] + cpu[2]
print(" ".join([str(sum(t for p, (_, t) in procs.items() if under(p, int(root))))
                for root in sys.argv[1:]] + [str(busy)]))
EOF
}

self_child_ticks() { # SELF_TICKS: cutime+cstime of this shell (no fork, so none added)
  local line
  read -r line <"/proc/$BASHPID/stat"
  line=${line##*) }
  local -a f
  read -r -a f <<<"$line"
  SELF_TICKS=$((f[13] + f[14]))
}

# cpu_split NAME WALL_S BEFORE AFTER WRK_TICKS: CPU[NAME] from the samples
cpu_split() {
  local name=$1 wall=$2 i label out="" sum=0
  local -a b a
  read -r -a b <<<"$3"
  read -r -a a <<<"$4"
  for i in "${!CPU_WATCH[@]}"; do
    label=${CPU_WATCH[i]%=*}
    out+=$(awk -v l="$label" -v t=$((a[i] - b[i])) -v hz="$CLK_TCK" -v w="$wall" \
      'BEGIN {printf "%s %.2f s (%.0f%%), ", l, t / hz, 100 * t / hz / w}')
    sum=$((sum + a[i] - b[i]))
  done
  sum=$((sum + $5))
  i=${#CPU_WATCH[@]}
  out+=$(awk -v t="$5" -v s="$sum" -v m=$((a[i] - b[i])) -v hz="$CLK_TCK" -v w="$wall" -v n="$(nproc)" \
    'BEGIN {o = m - s; if (o < 0) o = 0
            printf "wrk %.2f s (%.0f%%); together %.0f%% of %d%% (%d CPUs) over %.1f s; anything else on the machine %.0f%%",
            t / hz, 100 * t / hz / w, 100 * s / hz / w, 100 * n, n, w, 100 * o / hz / w}')
  CPU[$name]=$out
}

# ---- wrk ----------------------------------------------------------------------------

declare -A RPS P50 P99 NON2XX SOCKERR

# to_ms VALUE_WITH_UNIT (wrk prints us, ms, s, m)
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1
    if (f < 0) { print "nan"; exit }
    printf "%.3f", n * f }'
}

# wrk_bench NAME URL LUA_SCRIPT: an unmeasured warm-up (WARMUP), then the measured
# run (wrk -tTHREADS -cCONNECTIONS -dDURATION --latency); the figures go to
# RPS/P50/P99/NON2XX/SOCKERR[NAME], the raw output to $TMP/wrk-NAME.txt and stderr,
# the CPU split of the measured run (CPU_WATCH) to CPU[NAME].
wrk_bench() {
  local name=$1 url=$2 lua=$3 out=$TMP/wrk-$1.txt
  if [[ $WARMUP != 0 && $WARMUP != 0s ]]; then
    run "$TMP/wrk-$name-warmup.txt" timeout 60 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" \
      -s "$lua" "$url" ||
      die "$name: wrk warm-up failed: $(tail -3 "$TMP/wrk-$name-warmup.txt")"
  fi
  log "wrk $name: -t$THREADS -c$CONNECTIONS -d$DURATION ${WRK_WHAT:-} $url"
  local pids=() e before after t0 t1 w0
  for e in "${CPU_WATCH[@]}"; do pids+=("${e##*=}"); done
  ((${#pids[@]} == 0)) || before=$(tree_ticks "${pids[@]}")
  t0=$EPOCHREALTIME
  self_child_ticks
  w0=$SELF_TICKS
  run "$out" timeout 120 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
    -s "$lua" "$url" || die "$name: wrk failed: $(tail -5 "$out")"
  self_child_ticks
  t1=$EPOCHREALTIME
  for e in "${CPU_WATCH[@]}"; do
    alive "${e##*=}" || die "$name: ${e%=*} (pid ${e##*=}) exited during the run (its log: nothing above notice level; killed from outside?)"
  done
  if ((${#pids[@]} > 0)); then
    after=$(tree_ticks "${pids[@]}")
    cpu_split "$name" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" "$before" "$after" $((SELF_TICKS - w0))
    log "CPU during $name: ${CPU[$name]}"
  fi
  sed 's/^/    /' "$out" >&2
  RPS[$name]=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  P50[$name]=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
  P99[$name]=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
  NON2XX[$name]=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
  NON2XX[$name]=${NON2XX[$name]:-0}
  SOCKERR[$name]=$(grep -m1 'Socket errors:' "$out" | sed 's/^ *Socket errors: *//')
  [[ -n ${RPS[$name]} && ${P99[$name]} != nan && -n ${P99[$name]} ]] || die "$name: cannot read wrk's output"
  [[ ${NON2XX[$name]} == 0 ]] ||
    warn "$name: ${NON2XX[$name]} responses were not 2xx/3xx (wrk: Non-2xx or 3xx responses); its figures are not comparable"
  [[ -z ${SOCKERR[$name]} ]] || warn "$name: wrk socket errors: ${SOCKERR[$name]}"
}

# ---- callgrind ------------------------------------------------------------------

cg_total() { # OUTFILE -> total Ir: the totals: line (valgrind's "I refs"), else summary:
  awk '/^totals:/ {t = $2} /^summary:/ {s = $2} END {print (t != "" ? t : s)}' "$1"
}

# cg_pair LABEL: instructions per measured request, from a run with CG_BASE and
# one with CG_BASE + CG_N requests (the difference cancels start-up, priming and
# exit). okegw runs under callgrind (with workers = 1 when it has the key) in
# $TMP/cg-LABEL-N with its own store; hooks
# cg_prime and cg_client send the requests. Sets CG_IR[LABEL-N] and CG_PER[LABEL].
declare -A CG_IR CG_PER
cg_pair() {
  local label=$1 n d GW_WORKERS=1 # one event loop under callgrind (when the key exists)
  for n in "$CG_BASE" $((CG_BASE + CG_N)); do
    d=$TMP/cg-$label-$n
    mkdir -p "$d"
    log "callgrind run ($label) with $n ${CG_WHAT:-requests}"
    start_okegw "$d" 60 valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" --log-file="$d/valgrind.log"
    cg_prime "$OKEGW_PORT"
    run "$d/client.log" cg_client "$OKEGW_PORT" "$n" ||
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

# ---- report -------------------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.3f", a / b }'; }

#!/usr/bin/env bash
# Durable pushes through okegw's outbox: flow-3 result PATCHes (TA -> okegw -> TPL),
# each stored before its sender is answered: in SQLite for store_sync=full and
# normal, and in PostgreSQL with one and with two instances (behind nginx as a
# round-robin load balancer), against nginx as a plain proxy; plus callgrind
# figures (okegw's instructions per durable push). See tests/bench/README.md.
#
#   tests/bench/bench_outbox.sh
#
# Environment (all optional):
#   OKEGW               okegw binary (default: build/okegw under the repo root)
#   BENCH_SYNC          the store_sync settings to measure, in order (default "full normal")
#   BENCH_PG            okegw instance counts on one PostgreSQL to measure (default "1 2";
#                       "" skips PostgreSQL). The server is started here (tests/bench/pg_server.py,
#                       its data folder in BENCH_STORE_DIR or the temp dir, default settings:
#                       synchronous_commit = on); skipped with a warning when its binaries are missing
#   BENCH_PG_SETTINGS   server settings for it, e.g. "synchronous_commit=off"; with
#                       "shared_preload_libraries=pg_stat_statements" the report lists the
#                       statements that took the server's time
#   BENCH_DURATION      wrk -d per target          (default 10s)
#   BENCH_CONNECTIONS   wrk -c                     (default 64)
#   BENCH_THREADS       wrk -t                     (default 2: one per CPU; more wrk threads
#                       than CPUs take the CPU from what is measured)
#   BENCH_ASSOCIATIONS  deelnames (associations) the PATCHes go to (default 256);
#                       wrk thread i PATCHes its own BENCH_ASSOCIATIONS/BENCH_THREADS of them
#   BENCH_WARMUP        unmeasured wrk run per target before the measured one (default 1s; 0 = none)
#   BENCH_STORE_DIR     where okegw's SQLite stores go (default: the temp dir); the
#                       figures depend on what fsync costs there (the run measures it)
#   BENCH_DELIVERY_CONCURRENCY  delivery_concurrency of the TPL connector (default: not
#                       set, okegw's default 8)
#   BENCH_CG_REQUESTS   the N of the callgrind figure (default 200; runs with 20 and 20+N)
#   BENCH_CALLGRIND     0 skips the callgrind part (default 1)
#   BENCH_WORKERS       nginx worker_processes (peer, proxy) and okegw's [gateway] workers
#                       when the binary has that key (default: nproc)
#   BENCH_WORKERS_LIST  e.g. "1 2": okegw and the nginx proxy measured once per count
#                       (only when okegw has the workers key)
#   BENCH_TIMEOUT       hard limit for the whole run in seconds (default 300)
#   BENCH_KEEP          1 keeps the temp dir (logs, confs, stores, callgrind files); it
#                       is always kept when the run fails
#
# Only 127.0.0.1 is ever contacted. Every process started here is stopped on
# exit, including on failure, Ctrl-C and the BENCH_TIMEOUT watchdog.

# shellcheck disable=SC2034 # the settings below are also read by lib.sh
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SYNCS=${BENCH_SYNC:-full normal}
PG_INSTANCES=${BENCH_PG-1 2}
DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
ASSOCIATIONS=${BENCH_ASSOCIATIONS:-256}
WARMUP=${BENCH_WARMUP:-1s}
STORE_DIR=${BENCH_STORE_DIR:-}
DELIVERY_CONCURRENCY=${BENCH_DELIVERY_CONCURRENCY:-}
CG_N=${BENCH_CG_REQUESTS:-200}
CG_BASE=20
DO_CALLGRIND=${BENCH_CALLGRIND:-1}
TIMEOUT=${BENCH_TIMEOUT:-300}
KEEP=${BENCH_KEEP:-0}
AIM=5000 # durable pushes per second, the issue's aim

COMPONENT_ID=d38a7c5e-0f1b-4e6d-a2c9-5e1b3d7f9a6a
OFFERING_ID=8557ada3-553e-58c2-b4e2-f69f35e91c78
# the callers' bearer tokens (okegw identifies each system by its inbound_token)
TA_TOKEN=bench-ta-calls-okegw-0000000001
TPL_TOKEN=bench-tpl-calls-okegw-000000002

# shellcheck source=lib.sh
. "$HERE/lib.sh"
bench_traps
bench_workers

# ---- prerequisites ----------------------------------------------------------

bench_prerequisites common_get_service_metadata_response.json flow2_put_offering_request.json \
  flow2_put_association_student_request.json \
  examples/flow3_patch_association_result_request.json
for v in CONNECTIONS THREADS ASSOCIATIONS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "BENCH_$v must be a positive integer"
done
((CONNECTIONS % THREADS == 0)) || die "BENCH_CONNECTIONS ($CONNECTIONS) must be a multiple of BENCH_THREADS ($THREADS)"
((ASSOCIATIONS % THREADS == 0)) || die "BENCH_ASSOCIATIONS ($ASSOCIATIONS) must be a multiple of BENCH_THREADS ($THREADS)"
for s in $SYNCS; do
  [[ $s == full || $s == normal ]] || die "BENCH_SYNC: store_sync is full or normal, not '$s'"
done
[[ -n $SYNCS ]] || die "BENCH_SYNC is empty"
[[ -z $DELIVERY_CONCURRENCY || $DELIVERY_CONCURRENCY =~ ^[1-9][0-9]*$ ]] ||
  die "BENCH_DELIVERY_CONCURRENCY must be a positive integer"
for n in $PG_INSTANCES; do
  [[ $n == 1 || $n == 2 ]] || die "BENCH_PG: instance counts are 1 or 2, not '$n'"
done

bench_tmpdir outbox
cp "$FIXTURES/common_get_service_metadata_response.json" "$TMP/metadata.json" || die "cannot copy the service metadata"
okegw_workers_probe
COUNTS=${WORKERS_LIST:-$WORKERS}

if [[ -n $STORE_DIR ]]; then
  [[ -d $STORE_DIR ]] || die "BENCH_STORE_DIR $STORE_DIR is not a directory"
  STORES=$(mktemp -d "$STORE_DIR/okegw-bench-outbox-stores.XXXXXX") || die "mktemp in $STORE_DIR failed"
  CLEAN_DIRS+=("$STORES")
else
  STORES=$TMP/stores
  mkdir -p "$STORES"
fi
read -r STORE_DEV STORE_FS < <(df -PT "$STORES" 2>/dev/null | awk 'NR == 2 {print $1, $2}')
case ${STORE_FS:-} in
  tmpfs | ramfs) warn "the stores are on $STORE_FS ($STORES): fsync costs nothing there, so store_sync=full and normal measure the same; set BENCH_STORE_DIR to a disk" ;;
esac
# what one small synchronous write costs there (what synchronous=FULL pays per commit)
FSYNC_MS=$(python3 - "$STORES" <<'EOF'
import os, sys, time
fn = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(fn, os.O_WRONLY | os.O_CREAT, 0o600)
n, t = 200, time.perf_counter()
for i in range(n):
    os.pwrite(fd, b"x" * 4096, (i % 16) * 4096)
    os.fsync(fd)
print("%.3f" % ((time.perf_counter() - t) / n * 1000))
os.close(fd)
os.unlink(fn)
EOF
) || FSYNC_MS="?"

# PostgreSQL (BENCH_PG): one server for every PostgreSQL run, a database per run
PG_URL= PSQL= PG_NOTE=
if [[ -n $PG_INSTANCES ]]; then
  # shellcheck disable=SC2086 # NAME=VALUE words
  python3 "$HERE/pg_server.py" "$STORES" ${BENCH_PG_SETTINGS:-} >"$TMP/pg.out" 2>"$TMP/pg.err" </dev/null &
  PG_PID=$!
  PIDS+=("$PG_PID")
  wait_line "$TMP/pg.out" '^\(ready\|skip\)' "$PG_PID"
  if grep -q '^skip' "$TMP/pg.out"; then
    warn "PostgreSQL is not measured: $(sed -n 's/^skip //p' "$TMP/pg.out")"
    PG_INSTANCES=
  elif grep -q '^ready' "$TMP/pg.out"; then
    PG_URL=$(sed -n 's/^url //p' "$TMP/pg.out")
    PSQL=$(sed -n 's/^psql //p' "$TMP/pg.out")
    PG_POSTMASTER=$(sed -n 's/^pid //p' "$TMP/pg.out")
    PG_NOTE="$("$PSQL" "$PG_URL/postgres" -XAtc 'SHOW server_version'), synchronous_commit $("$PSQL" "$PG_URL/postgres" -XAtc 'SHOW synchronous_commit'), data in $STORES"
    log "PostgreSQL (pid $PG_PID): $PG_NOTE"
  else
    die "PostgreSQL did not start: $(tail -5 "$TMP/pg.err")"
  fi
fi

# pg_db NAME: a new database NAME on that server; prints its URI
pg_db() {
  "$PSQL" "$PG_URL/postgres" -XqAtc "CREATE DATABASE $1" >>"$TMP/psql.log" 2>&1 ||
    die "cannot create database $1: $(tail -3 "$TMP/psql.log")"
  [[ ${BENCH_PG_SETTINGS:-} != *pg_stat_statements* ]] ||
    "$PSQL" "$PG_URL/$1" -XqAtc "CREATE EXTENSION pg_stat_statements" >>"$TMP/psql.log" 2>&1
  echo "$PG_URL/$1"
}

# pg_top URI: the statements that took the server's time (pg_stat_statements)
pg_top() {
  [[ ${BENCH_PG_SETTINGS:-} == *pg_stat_statements* ]] || return 0
  "$PSQL" "$1" -XAtF ' | ' -c "SELECT calls, round(total_exec_time::numeric, 1) AS ms, \
    round((total_exec_time / calls)::numeric, 3) AS ms_per_call, \
    left(regexp_replace(query, '\s+', ' ', 'g'), 160) FROM pg_stat_statements \
    ORDER BY total_exec_time DESC LIMIT 12" | sed 's/^/    /' >&2
}

# ---- bodies and ids -----------------------------------------------------------

# ASSOCIATIONS deelnames of one zitting (the student fixture, each its own
# associationId), and the flow-3 result the TA PATCHes onto each of them
# (the components page the TA serves is the first component of the flow-0 fixture)
outbox_bodies

# read by outbox_patch.lua
export BENCH_BODY_FILE=$RESULT_BODY BENCH_IDS_FILE=$IDS_FILE
export BENCH_IDS_PER_THREAD=$((ASSOCIATIONS / THREADS))
if ((BENCH_IDS_PER_THREAD == 1 && CONNECTIONS == THREADS)); then
  SPREAD="one association per connection"
else
  SPREAD="$BENCH_IDS_PER_THREAD associations per wrk thread of $((CONNECTIONS / THREADS)) connections, round-robin"
fi

# ---- 1, 2. the stand-in for both peers (nginx) and nginx as a plain proxy ------
#
# One nginx is the test supplier (TA) under /ta/ and the planning system (TPL)
# under /tpl/. Everything okegw sends answers 200 with an empty body, except a
# PATCH at the TA: a result must go to the TPL, so that is a 409 (visible as
# non-2xx) should okegw ever send it the wrong way.

read -r PEER_PORT PROXY_PORT <<<"$(free_ports 2)"
[[ -n ${PROXY_PORT:-} ]] || die "cannot find free ports"

mkdir -p "$TMP/peer" "$TMP/proxy"
{
  nginx_common "$TMP/peer"
  echo "http {"
  nginx_http_common "$TMP/peer"
  outbox_peer_server "$PEER_PORT"
  echo "}"
} >"$TMP/peer/nginx.conf"
start_peer_and_proxy ": TA under /ta/ooapi, TPL under /tpl/ooapi"

# the peer and the proxy answer the benchmark request, keep-alive survives a
# PATCH body (two PATCHes on one curl connection, then a GET of the page), and
# a result PATCH at the TA is refused
TPL_PATH=/tpl/ooapi/associations/${IDS[0]}
for port in "$PEER_PORT" "$PROXY_PORT"; do
  out=$(curl -sS --max-time 10 -H 'Expect:' -o /dev/null -w '%{http_code} %{num_connects}\n' \
    -X PATCH -H 'Content-Type: application/json' --data-binary "@$RESULT_BODY" "http://127.0.0.1:$port$TPL_PATH" \
    --next -sS --max-time 10 -H 'Expect:' -o /dev/null -w '%{http_code} %{num_connects}\n' \
    -X PATCH -H 'Content-Type: application/json' --data-binary "@$RESULT_BODY" "http://127.0.0.1:$port/tpl/ooapi/associations/${IDS[-1]}" \
    --next -sS --max-time 10 -o "$TMP/page.json" -w '%{http_code} %{num_connects}\n' \
    "http://127.0.0.1:$port/ta/ooapi/components?componentType=test" 2>>"$TMP/curl.err")
  [[ $out == $'200 1\n200 0\n200 0' ]] || die "127.0.0.1:$port: PATCH/PATCH/GET on one connection gave [${out//$'\n'/, }] (want 200 1, 200 0, 200 0)"
  python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); sys.exit(0 if p["items"][0]["componentId"]==sys.argv[2] else 1)' \
    "$TMP/page.json" "$COMPONENT_ID" || die "127.0.0.1:$port: the components page is not the expected JSON"
done
st=$(http_status PATCH "http://127.0.0.1:$PEER_PORT/ta/ooapi/associations/${IDS[0]}" "$RESULT_BODY")
[[ $st == 409 ]] || die "a PATCH at the TA's location gave $st (want 409)"
if errs=$(nginx_errors "$TMP/peer/error.log" "$TMP/proxy/error.log"); then
  die "nginx logged errors: $errs"
fi

# ---- 3. okegw -----------------------------------------------------------------

# STORE_SYNC picks the store_sync of the conf; the store is DIR's name under STORES
write_okegw_conf() { # DIR
  outbox_okegw_conf "$1" /tpl "store_sync = $STORE_SYNC" \
    "${DELIVERY_CONCURRENCY:+delivery_concurrency = $DELIVERY_CONCURRENCY}"
}


# check_result PORT ID: one result PATCH by the TA, answered 200 (delivered)
check_result() {
  local st
  st=$(http_status PATCH "http://127.0.0.1:$1/ooapi/associations/$2" "$RESULT_BODY" "Authorization: Bearer $TA_TOKEN")
  [[ $st == 200 ]] || die "okegw flow-3 PATCH (TA token) gave $st (want 200, delivered): $(head -c 300 "$TMP/curl.out")"
}

# okegw_cli DIR ARGS...: the operator commands on DIR's store
okegw_cli() {
  local d=$1
  shift
  "$OKEGW" "$@" -c "$d/plugins.conf"
}

# ---- 4. wrk -------------------------------------------------------------------

WRK_WHAT="PATCH ($SPREAD)"
bench() { # NAME PORT PATH_PREFIX
  local name=$1 port=$2 prefix=$3 st
  st=$(http_status PATCH "http://127.0.0.1:$port$prefix${IDS[0]}" "$RESULT_BODY" "Authorization: Bearer $TA_TOKEN")
  is_2xx "$st" || die "$name: the benchmark request gives $st before the run: $(head -c 300 "$TMP/curl.out")"
  BENCH_PATH_PREFIX=$prefix BENCH_TOKEN=$TA_TOKEN wrk_bench "$name" "http://127.0.0.1:$port/" "$HERE/outbox_patch.lua"
}

CPU_WATCH=("peer nginx=$PEER_PID")
bench peer "$PEER_PORT" /tpl/ooapi/associations/

# after_run NAME DIR PID...: what wrk cut off at its end still goes out (waits
# until nothing is pending), the warnings the okegws logged, then they stop
after_run() {
  local name=$1 d=$2 pid deadline pending warns
  shift 2
  deadline=$((SECONDS + 10))
  while :; do
    pending=$(okegw_cli "$d" deliveries list --state pending --limit 1000000 --json 2>>"$d/cli.err" | grep -c .)
    [[ $pending == 0 || $SECONDS -ge $deadline ]] && break
    sleep 0.2
  done
  [[ $pending == 0 ]] || warn "okegw ($name): $pending deliveries still pending 10 s after wrk ended"
  # okegw at warn logs only problems: count them (5xx answers, connector failures)
  warns=$(cat "${d%-0}"*/stderr.log | grep -c '"level":"\(warn\|error\)"')
  [[ $warns == 0 ]] || warn "okegw ($name) logged $warns warn/error lines, e.g.: $(cat "${d%-0}"*/stderr.log | grep -m1 '"level":"\(warn\|error\)"')"
  for pid in "$@"; do
    stop_pid "$pid" TERM 15
    forget_pid "$pid"
    [[ $STOP_RC == 0 ]] || warn "okegw ($name, pid $pid) exited with status $STOP_RC on SIGTERM"
  done
}

# store_stats NAME sqlite FILE | NAME pg URI: from the store (okegw has exited):
# how okegw answered the TA's PATCHes (its audit rows of event "request"),
# where the deliveries to the TPL ended, and (SQLite) the journal mode; sets
# GW_STATS[NAME]
store_stats() {
  GW_STATS[$1]=$(python3 - "$2" "$3" "$PSQL" <<'EOF'
import sqlite3, subprocess, sys
kind, where, psql = sys.argv[1:4]
ANSWERS = ("SELECT status, count(*) FROM audit WHERE event = 'request' AND "
           "interaction = 'flow3.patch_association' GROUP BY status ORDER BY status")
STATES = ("SELECT state, count(*), sum(attempts) FROM deliveries WHERE "
          "connector = 'planning' GROUP BY state ORDER BY state")
if kind == "sqlite":
    db = sqlite3.connect("file:%s?mode=ro" % where, uri=True)
    answers, states = db.execute(ANSWERS).fetchall(), db.execute(STATES).fetchall()
    extra = "; journal_mode %s" % db.execute("PRAGMA journal_mode").fetchone()[0]
else:
    def q(sql):
        out = subprocess.run([psql, where, "-XAtF", " ", "-c", sql], check=True,
                             capture_output=True, text=True).stdout
        return [tuple(int(x) if x.isdigit() else x for x in line.split()) for line in
                out.splitlines() if line]
    answers, states, extra = q(ANSWERS), q(STATES), ""
a = ", ".join("%s %d" % (k, v) for k, v in answers) or "none"
s = ", ".join("%s %d" % (k, v) for k, v, _ in states) or "none"
tries = sum(t or 0 for _, _, t in states) - sum(v for k, v, _ in states if k != "pending")
print("answers to the TA's PATCHes: %s; deliveries to the TPL: %s; extra attempts %d%s"
      % (a, s, tries, extra))
bad = sum(v for k, v in answers if k not in (200, 202)) + \
    sum(v for k, v, _ in states if k != "delivered")
sys.exit(3 if bad or tries else 0)
EOF
  ) || warn "okegw ($1): not every PATCH was answered 2xx and delivered at the first attempt: ${GW_STATS[$1]}"
  [[ -n ${GW_STATS[$1]} ]] || die "cannot read okegw's store ($1)"
  log "okegw $1: ${GW_STATS[$1]}"
}

# lb_conf DIR PORT UPSTREAM_PORT...: nginx as the school's load balancer, round
# robin over the okegw instances
lb_conf() {
  local d=$1 port=$2 p
  shift 2
  nginx_common "$d"
  echo "http {"
  nginx_http_common "$d"
  echo "  upstream okegw {"
  for p in "$@"; do echo "    server 127.0.0.1:$p;"; done
  cat <<EOF
    keepalive 64;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://okegw;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
}

# K: the name of each okegw run: store_sync-workers (SQLite; its dir gw-K, its
# store) or pgN-workers (N instances on one PostgreSQL database; dirs gw-K-0 ...)
declare -A GW_STATS
for w in $COUNTS; do
  [[ -z $WORKERS_LIST ]] || start_proxy "$w"
  CPU_WATCH=("nginx proxy=$PROXY_PID" "peer nginx=$PEER_PID")
  bench "nginx-$w" "$PROXY_PORT" /tpl/ooapi/associations/
  for sync in $SYNCS; do
    k=$sync-$w
    d=$TMP/gw-$k
    STORE_SYNC=$sync GW_WORKERS=${GW_WORKERS:+$w} start_okegw "$d" 15
    GW_PID=$OKEGW_PID
    GW_PORT=$OKEGW_PORT
    log "okegw store_sync=$sync (pid $GW_PID; $OKEGW_ID${GW_WORKERS:+; workers = $w}) on 127.0.0.1:$GW_PORT, store $STORES/gw-$k/bench.db"
    outbox_prime "$GW_PORT" "$ASSOCIATIONS"
    check_result "$GW_PORT" "${IDS[0]}"
    log "okegw primed: $ASSOCIATIONS deelnames delivered to the TA; a result PATCH by the TA is delivered to the TPL (200)"
    CPU_WATCH=("okegw=$GW_PID" "peer nginx=$PEER_PID")
    bench "okegw-$k" "$GW_PORT" /ooapi/associations/
    alive "$GW_PID" || die "okegw (store_sync=$sync) died during the run: $(tail -5 "$d/stderr.log")"
    after_run "store_sync=$sync" "$d" "$GW_PID"
    store_stats "$k" sqlite "$STORES/gw-$k/bench.db"
  done
  for n in $PG_INSTANCES; do
    k=pg$n-$w
    uri=$(pg_db "bench_pg${n}_$w")
    pids=() ports=() watch=()
    for ((j = 0; j < n; j++)); do
      STORE_URI=$uri STORE_SYNC=full GW_WORKERS=${GW_WORKERS:+$w} start_okegw "$TMP/gw-$k-$j" 30
      pids+=("$OKEGW_PID")
      ports+=("$OKEGW_PORT")
      watch+=("okegw-$j=$OKEGW_PID")
      log "okegw $((j + 1)) of $n on PostgreSQL (pid $OKEGW_PID${GW_WORKERS:+; workers = $w}) on 127.0.0.1:$OKEGW_PORT"
    done
    port=${ports[0]}
    if ((n > 1)); then
      read -r port < <(free_ports 1)
      mkdir -p "$TMP/lb-$k"
      NGINX_WORKERS=$w lb_conf "$TMP/lb-$k" "$port" "${ports[@]}" >"$TMP/lb-$k/nginx.conf"
      start_nginx "lb-$k"
      LB_PID=$NGINX_PID
      wait_http "http://127.0.0.1:$port/" "$LB_PID" 10 || die "the load balancer nginx did not come up"
      watch+=("nginx lb=$LB_PID")
      log "nginx load balancer (pid $LB_PID, $w workers) on 127.0.0.1:$port -> ${ports[*]}"
    fi
    outbox_prime "$port" "$ASSOCIATIONS"
    check_result "$port" "${IDS[0]}"
    CPU_WATCH=("${watch[@]}" "peer nginx=$PEER_PID" "postgres=$PG_POSTMASTER")
    bench "okegw-$k" "$port" /ooapi/associations/
    after_run "PostgreSQL, $n instance(s)" "$TMP/gw-$k-0" "${pids[@]}"
    if ((n > 1)); then
      stop_pid "$LB_PID" TERM 10
      forget_pid "$LB_PID"
    fi
    store_stats "$k" pg "$uri"
    pg_top "$uri"
  done
done
CPU_WATCH=()

# ---- 5. callgrind: instructions per durable push --------------------------------

# the hooks of cg_pair: one deelname delivered to the TA, then N result PATCHes
# by the TA onto it on one connection (each answered once delivered to the TPL)
CG_WHAT="result PATCHes"
cg_prime() {
  outbox_prime "$1" 1
}
cg_client() {
  exec timeout 120 python3 "$HERE/keepalive_client.py" "$1" "$2" PATCH "/ooapi/associations/${IDS[0]}" \
    --body "$RESULT_BODY" -H "Authorization: Bearer $TA_TOKEN"
}

CG_RESULT=
if [[ $DO_CALLGRIND == 1 ]]; then
  for sync in $SYNCS; do
    STORE_SYNC=$sync cg_pair "$sync"
    for n in "$CG_BASE" $((CG_BASE + CG_N)); do
      grep -q '(0 of them 202)' "$TMP/cg-$sync-$n/client.log" ||
        warn "callgrind run ($sync, $n): some PATCHes were answered 202 (not delivered within delivery_wait_ms): $(cat "$TMP/cg-$sync-$n/client.log")"
    done
  done
  if [[ -n $PG_INSTANCES ]]; then # one instance on PostgreSQL (both runs on one database)
    STORE_URI=$(pg_db bench_cg) STORE_SYNC=full cg_pair pg
  fi
  CG_RESULT=1
fi

# ---- report -------------------------------------------------------------------

pragma() { [[ $1 == full ]] && echo FULL || echo NORMAL; }

echo
echo "okegw outbox benchmark: durable pushes = flow-3 result PATCH /ooapi/associations/{id}"
echo "  by the TA, stored, delivered to the TPL, its end stored, then answered ($(wc -c <"$RESULT_BODY") byte JSON body)"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency over $ASSOCIATIONS deelnames ($SPREAD); $(nproc) CPUs; load average at start $LOADAVG"
echo "$("$OKEGW" --version 2>/dev/null | head -1); binary $OKEGW_ID"
echo "stores: $STORES (${STORE_FS:-?} on ${STORE_DEV:-?}; 4 KiB write + fsync there: $FSYNC_MS ms)"
echo "TPL connector: delivery_concurrency ${DELIVERY_CONCURRENCY:-8 (default)}, delivery_wait_ms 2000 (default)"
echo "aim (issue): at least $AIM durable pushes/s"
echo
echo "nginx (peer, proxy): worker_processes $WORKERS${WORKERS_LIST:+ (the proxy: each of $WORKERS_LIST)}; $WORKERS_NOTE"
echo
row() { printf '%-56s %10s %9s %9s %8s\n' "$1" "${RPS[$2]}" "${P50[$2]}" "${P99[$2]}" "${NON2XX[$2]}"; }
pg_what() { ((${1} == 1)) && echo "1 instance" || echo "$1 instances + nginx lb"; }
wl() { [[ -z $GW_WORKERS && -z $WORKERS_LIST ]] || echo ", workers=$1"; }
printf '%-56s %10s %9s %9s %8s\n' target req/s "p50 (ms)" "p99 (ms)" non-2xx
row "(a) peer nginx, direct" peer
letter=(b c d e f g h i j k l m n o p q r s t u v w x y z)
i=0
for w in $COUNTS; do
  row "(${letter[i++]}) nginx reverse proxy -> peer$(wl "$w")" "nginx-$w"
  for sync in $SYNCS; do
    row "(${letter[i++]}) okegw, store_sync=$sync (synchronous=$(pragma "$sync"))$(wl "$w")" "okegw-$sync-$w"
  done
  for n in $PG_INSTANCES; do
    row "(${letter[i++]}) okegw, PostgreSQL, $(pg_what "$n")$(wl "$w")" "okegw-pg$n-$w"
  done
done
echo
for w in $COUNTS; do
  for sync in $SYNCS; do
    k=$sync-$w
    met=$(awk -v r="${RPS[okegw-$k]}" -v a="$AIM" 'BEGIN {print (r + 0 >= a) ? "met" : "NOT met"}')
    printf 'store_sync=%-6s (synchronous=%-6s)%s: okegw/nginx proxy req/s %s, p50 %s, p99 %s; aim %d/s %s\n' \
      "$sync" "$(pragma "$sync")" "$(wl "$w")" "$(ratio "${RPS[okegw-$k]}" "${RPS[nginx-$w]}")" \
      "$(ratio "${P50[okegw-$k]}" "${P50[nginx-$w]}")" "$(ratio "${P99[okegw-$k]}" "${P99[nginx-$w]}")" "$AIM" "$met"
    printf '  %s\n' "${GW_STATS[$k]}"
    printf '  CPU: %s\n' "${CPU[okegw-$k]}"
  done
  for n in $PG_INSTANCES; do
    k=pg$n-$w
    printf 'PostgreSQL, %s%s: okegw/nginx proxy req/s %s, p50 %s, p99 %s; against SQLite (store_sync=full): req/s %s, p99 %s\n' \
      "$(pg_what "$n")" "$(wl "$w")" "$(ratio "${RPS[okegw-$k]}" "${RPS[nginx-$w]}")" \
      "$(ratio "${P50[okegw-$k]}" "${P50[nginx-$w]}")" "$(ratio "${P99[okegw-$k]}" "${P99[nginx-$w]}")" \
      "$(ratio "${RPS[okegw-$k]}" "${RPS[okegw-full-$w]:-}")" "$(ratio "${P99[okegw-$k]}" "${P99[okegw-full-$w]:-}")"
    printf '  %s\n' "${GW_STATS[$k]}"
    printf '  CPU: %s\n' "${CPU[okegw-$k]}"
  done
done
[[ -z $PG_NOTE ]] || echo "PostgreSQL: $PG_NOTE"
# shellcheck disable=SC2086 # the counts, one word each
set -- $COUNTS
if (($# > 1)); then
  for sync in $SYNCS; do
    printf 'durable pushes/s, store_sync=%s: workers=%s / workers=%s = %s (nginx proxy: %s)\n' "$sync" "${!#}" "$1" \
      "$(ratio "${RPS[okegw-$sync-${!#}]}" "${RPS[okegw-$sync-$1]}")" "$(ratio "${RPS[nginx-${!#}]}" "${RPS[nginx-$1]}")"
  done
fi
echo "CPU (user+sys of each process tree, % of the run; 100% = one CPU):"
printf '  %-16s %s\n' "(a) peer" "${CPU[peer]}"
for w in $COUNTS; do
  printf '  %-16s %s\n' "nginx-$w" "${CPU[nginx-$w]}"
done
if [[ -n $CG_RESULT ]]; then
  for sync in $SYNCS; do
    printf 'callgrind: okegw instructions per durable push, store_sync=%s (synchronous=%s) = %s  (Ir %s with %d PATCHes, %s with %d; (diff)/%d)\n' \
      "$sync" "$(pragma "$sync")" "${CG_PER[$sync]}" "${CG_IR[$sync-$((CG_BASE + CG_N))]}" $((CG_BASE + CG_N)) \
      "${CG_IR[$sync-$CG_BASE]}" "$CG_BASE" "$CG_N"
  done
  if [[ -n ${CG_PER[pg]:-} ]]; then
    printf 'callgrind: okegw instructions per durable push, PostgreSQL (okegw only, not the server) = %s  (Ir %s with %d PATCHes, %s with %d; (diff)/%d)\n' \
      "${CG_PER[pg]}" "${CG_IR[pg-$((CG_BASE + CG_N))]}" $((CG_BASE + CG_N)) "${CG_IR[pg-$CG_BASE]}" "$CG_BASE" "$CG_N"
  fi
else
  echo "callgrind: skipped (BENCH_CALLGRIND=0)"
fi
echo "elapsed: $((SECONDS - T0)) s"

OK=1

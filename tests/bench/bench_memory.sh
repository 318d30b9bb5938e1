#!/usr/bin/env bash
# okegw's memory (VmRSS, VmHWM): idle, after N durable flow-3 pushes delivered,
# after a burst of connections, and with N deliveries held open in the outbox
# (the TPL answering 503). See tests/bench/README.md.
#
#   tests/bench/bench_memory.sh                        # N = 1000000: a long run (see README)
#   BENCH_PUSHES=100000 tests/bench/bench_memory.sh    # quick
#
# Environment (all optional):
#   OKEGW               okegw binary (default: build/okegw under the repo root)
#   BENCH_PUSHES        N, the durable pushes of each push phase (default 1000000)
#   BENCH_BURST         connections of the burst (default 2000)
#   BENCH_SETTLE        seconds between "right after the burst" and the second look (default 5)
#   BENCH_CONNECTIONS   wrk -c of the push phases (default 64)
#   BENCH_THREADS       wrk -t (default 2); must divide -c and BENCH_ASSOCIATIONS
#   BENCH_ASSOCIATIONS  deelnames the results go to (default 256)
#   BENCH_STORE_DIR     where okegw's SQLite stores go (default: the temp dir)
#   BENCH_WORKERS       nginx worker_processes (the peer) and okegw's [gateway] workers
#                       when the binary has that key (default: nproc)
#   BENCH_TIMEOUT       hard limit for the whole run in seconds (default 300 + N/250)
#   BENCH_KEEP          1 keeps the temp dir (logs, confs, stores); it is always
#                       kept when the run fails
#
# Only 127.0.0.1 is ever contacted. Every process started here is stopped on
# exit, including on failure, Ctrl-C and the BENCH_TIMEOUT watchdog.

# shellcheck disable=SC2034 # the settings below are also read by lib.sh
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PUSHES=${BENCH_PUSHES:-1000000}
BURST=${BENCH_BURST:-2000}
SETTLE=${BENCH_SETTLE:-5}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
ASSOCIATIONS=${BENCH_ASSOCIATIONS:-256}
STORE_DIR=${BENCH_STORE_DIR:-}
KEEP=${BENCH_KEEP:-0}
CG_N=1 # no callgrind part here
DO_CALLGRIND=0
MAX_OPEN_LIMIT=10000000 # the largest outbox_max_open okegw takes (core/base/conf.c)

COMPONENT_ID=d38a7c5e-0f1b-4e6d-a2c9-5e1b3d7f9a6a
OFFERING_ID=8557ada3-553e-58c2-b4e2-f69f35e91c78
TA_TOKEN=bench-ta-calls-okegw-0000000001
TPL_TOKEN=bench-tpl-calls-okegw-000000002

# shellcheck source=lib.sh
. "$HERE/lib.sh"
bench_traps
bench_workers

# ---- prerequisites ----------------------------------------------------------

for v in PUSHES BURST CONNECTIONS THREADS ASSOCIATIONS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "BENCH_$v must be a positive integer"
done
[[ $SETTLE =~ ^[0-9]+$ ]] || die "BENCH_SETTLE must be a whole number of seconds"
TIMEOUT=${BENCH_TIMEOUT:-$((300 + PUSHES / 250))}
bench_prerequisites common_get_service_metadata_response.json flow0_get_components_response.json \
  flow2_put_offering_request.json flow2_put_association_student_request.json \
  examples/flow3_patch_association_result_request.json
((CONNECTIONS % THREADS == 0)) || die "BENCH_CONNECTIONS ($CONNECTIONS) must be a multiple of BENCH_THREADS ($THREADS)"
((ASSOCIATIONS % THREADS == 0)) || die "BENCH_ASSOCIATIONS ($ASSOCIATIONS) must be a multiple of BENCH_THREADS ($THREADS)"
# the burst needs BURST descriptors in the client and in okegw (both inherit ours)
need=$((BURST + 256))
if (($(ulimit -n) < need)); then
  ulimit -n "$need" 2>/dev/null || die "open files limit $(ulimit -n) < $need (BENCH_BURST=$BURST); raise it (ulimit -n) or lower BENCH_BURST"
fi
MAX_CONNECTIONS=$((BURST + 64 > 1024 ? BURST + 64 : 1024))
((MAX_CONNECTIONS <= 100000)) || die "BENCH_BURST: okegw's max_connections takes at most 100000"
# N open deliveries need outbox_max_open >= N (plus the pushes wrk has in flight
# when it stops, plus the priming); okegw takes at most MAX_OPEN_LIMIT
MAX_OPEN=$((PUSHES + CONNECTIONS + ASSOCIATIONS + 1000))
MAX_OPEN_NOTE="outbox_max_open = $MAX_OPEN"
if ((MAX_OPEN > MAX_OPEN_LIMIT)); then
  MAX_OPEN=$MAX_OPEN_LIMIT
  MAX_OPEN_NOTE="outbox_max_open = $MAX_OPEN_LIMIT, the largest okegw allows: fewer than N=$PUSHES open deliveries fit (the rest get 503)"
  warn "$MAX_OPEN_NOTE"
fi

bench_tmpdir memory
okegw_workers_probe
cp "$FIXTURES/common_get_service_metadata_response.json" "$TMP/metadata.json" || die "cannot copy the service metadata"

if [[ -n $STORE_DIR ]]; then
  [[ -d $STORE_DIR ]] || die "BENCH_STORE_DIR $STORE_DIR is not a directory"
  STORES=$(mktemp -d "$STORE_DIR/okegw-bench-memory-stores.XXXXXX") || die "mktemp in $STORE_DIR failed"
  CLEAN_DIRS+=("$STORES")
else
  STORES=$TMP/stores
  mkdir -p "$STORES"
fi
read -r STORE_DEV STORE_FS < <(df -PT "$STORES" 2>/dev/null | awk 'NR == 2 {print $1, $2}')

# ---- bodies and ids (as bench_outbox.sh) ----------------------------------------

outbox_bodies
export BENCH_BODY_FILE=$RESULT_BODY BENCH_IDS_FILE=$IDS_FILE BENCH_IDS_PER_THREAD=$((ASSOCIATIONS / THREADS))
export BENCH_PATH_PREFIX=/ooapi/associations/ BENCH_TOKEN=$TA_TOKEN BENCH_THREADS=$THREADS

# ---- 1. the stand-in for the TA and the TPL (nginx) ------------------------------
#
# The TA under /ta/ (a PATCH there is 409: a result must go to the TPL), the TPL
# under /tpl/ (200), and a TPL that answers every push 503 under /tpl503/.

read -r PEER_PORT <<<"$(free_ports 1)"
[[ -n ${PEER_PORT:-} ]] || die "cannot find a free port"
mkdir -p "$TMP/peer"
{
  nginx_common "$TMP/peer"
  echo "http {"
  nginx_http_common "$TMP/peer"
  outbox_peer_server "$PEER_PORT"
  echo "}"
} >"$TMP/peer/nginx.conf"
start_nginx peer
PEER_PID=$NGINX_PID
wait_http "http://127.0.0.1:$PEER_PORT/" "$PEER_PID" 10 ||
  die "the peer nginx did not come up: $(tail -5 "$TMP/peer/error.log" 2>/dev/null)"
log "peer nginx (pid $PEER_PID, $WORKERS workers) on 127.0.0.1:$PEER_PORT: TA /ta/ooapi, TPL /tpl/ooapi, failing TPL /tpl503/ooapi"
st=$(http_status PATCH "http://127.0.0.1:$PEER_PORT/tpl503/ooapi/associations/${IDS[0]}" "$RESULT_BODY")
[[ $st == 503 ]] || die "the failing TPL answers $st (want 503)"

# ---- okegw ----------------------------------------------------------------------

# TPL_PATH: the TPL's base path at the peer (/tpl or /tpl503); DELIVERY_EXTRA: more
# lines for the TPL connector
write_okegw_conf() { # DIR
  outbox_okegw_conf "$1" "$TPL_PATH" $'max_connections = '"$MAX_CONNECTIONS"$'\noutbox_max_open = '"$MAX_OPEN" \
    "$DELIVERY_EXTRA"
}


# store_q DB SQL: the one value SQL selects from okegw's store (read-only, while okegw runs)
store_q() {
  python3 - "$1" "$2" <<'EOF'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=10)
print(db.execute(sys.argv[2]).fetchone()[0])
EOF
}
# store_count DB WHERE: deliveries to the TPL matching WHERE
store_count() { store_q "$1" "SELECT count(*) FROM deliveries WHERE connector = 'planning' AND ($2)"; }
# the newest delivery's id (ids only grow: AUTOINCREMENT); cheap on a large table
store_maxid() { store_q "$1" "SELECT coalesce(max(id), 0) FROM deliveries"; }
OPEN_WHERE="state IN ('pending', 'dead')"

# mem PID: "RSS_KIB HWM_KIB PROCS": VmRSS summed over PID's process tree, VmHWM of
# PID itself (the peak of its resident set since start), the number of processes
declare -A RSS HWM NPROC WHAT
mem() { # NAME PID WHAT
  local r
  r=$(python3 - "$2" <<'EOF'
import os, sys
root = int(sys.argv[1])
parent, status = {}, {}
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        with open("/proc/%s/status" % p) as f:
            d = dict(l.split(":", 1) for l in f if ":" in l)
    except OSError:
        continue
    parent[int(p)] = int(d["PPid"])
    status[int(p)] = d
def under(p):
    for _ in range(64):
        if p == root:
            return True
        if p not in parent or p <= 1:
            return False
        p = parent[p]
    return False
tree = [p for p in status if under(p)]
kib = lambda d, k: int(d.get(k, "0 kB").split()[0])
print(sum(kib(status[p], "VmRSS") for p in tree), kib(status[root], "VmHWM"), len(tree))
EOF
  ) || die "cannot read /proc/$2/status"
  read -r "RSS[$1]" "HWM[$1]" "NPROC[$1]" <<<"$r"
  WHAT[$1]=$3
  log "memory $1: VmRSS $((RSS[$1] / 1024)) MiB, VmHWM $((HWM[$1] / 1024)) MiB (${NPROC[$1]} process(es)): $3"
}

# push PORT NAME: PUSHES result PATCHes with wrk (outbox_patch.lua, each thread
# stopping after its share), ended once the store holds PUSHES new deliveries
# (to the TPL: the only deliveries made meanwhile). Sets PUSH_RATE[NAME] (stored pushes per second, wall clock) and
# PUSH_STORED[NAME].
declare -A PUSH_RATE PUSH_STORED
push() {
  local port=$1 name=$2 db=$3 before now t0 pid out=$TMP/wrk-$2.txt n
  before=$(store_maxid "$db") || die "$name: cannot read the store"
  log "wrk $name: -t$THREADS -c$CONNECTIONS, $PUSHES result PATCHes over $ASSOCIATIONS deelnames -> 127.0.0.1:$port"
  t0=$EPOCHREALTIME
  BENCH_MAX_REQUESTS=$PUSHES wrk -t"$THREADS" -c"$CONNECTIONS" -d"${TIMEOUT}s" --timeout 30s --latency \
    -s "$HERE/outbox_patch.lua" "http://127.0.0.1:$port/" >"$out" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  while :; do
    sleep 1
    alive "$pid" || die "$name: wrk ended early: $(tail -5 "$out")"
    now=$(store_maxid "$db") || die "$name: cannot read the store"
    n=$((now - before))
    ((n >= PUSHES)) && break
    ((SECONDS % 30 == 0)) && log "  $name: $n of $PUSHES pushes stored"
  done
  PUSH_RATE[$name]=$(awk -v n="$n" -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", n / (b - a)}')
  stop_pid "$pid" INT 10 # wrk prints its figures on SIGINT
  forget_pid "$pid"
  sed 's/^/    /' "$out" >&2
  PUSH_STORED[$name]=$(store_count "$db" "id > $before")
  NON2XX[$name]=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
  [[ -z ${NON2XX[$name]} ]] || warn "$name: ${NON2XX[$name]} answers were not 2xx"
  log "$name: ${PUSH_STORED[$name]} pushes stored, ${PUSH_RATE[$name]}/s"
}

gw_warnings() { # DIR NAME
  local n
  n=$(grep -c '"level":"\(warn\|error\)"' "$1/stderr.log")
  [[ $n == 0 ]] || warn "okegw ($2) logged $n warn/error lines, e.g.: $(grep -m1 '"level":"\(warn\|error\)"' "$1/stderr.log" | cut -c1-300)"
}

# ---- 2. okegw A: the TPL answers; idle, N pushes delivered, the burst --------------

TPL_PATH=/tpl DELIVERY_EXTRA='' start_okegw "$TMP/gw-ok" 15
GW_PID=$OKEGW_PID
GW_PORT=$OKEGW_PORT
DB=$STORES/gw-ok/bench.db
log "okegw A (pid $GW_PID; $OKEGW_ID${GW_WORKERS:+; workers = $GW_WORKERS}) on 127.0.0.1:$GW_PORT, TPL answering 200"
sleep 1
mem idle "$GW_PID" "idle, 1 s after start"
outbox_prime "$GW_PORT" "$ASSOCIATIONS"
st=$(http_status PATCH "http://127.0.0.1:$GW_PORT/ooapi/associations/${IDS[0]}" "$RESULT_BODY" "Authorization: Bearer $TA_TOKEN")
[[ $st == 200 ]] || die "okegw A: a result PATCH gave $st (want 200, delivered): $(head -c 300 "$TMP/curl.out")"
mem primed "$GW_PID" "after priming ($ASSOCIATIONS deelnames delivered to the TA, one result to the TPL)"

push "$GW_PORT" delivered "$DB"
deadline=$((SECONDS + 60))
while open=$(store_count "$DB" "$OPEN_WHERE") && ((open > 0 && SECONDS < deadline)); do sleep 0.5; done
((open == 0)) || warn "okegw A: $open deliveries still open 60 s after the pushes"
DELIVERED=$(store_count "$DB" "state = 'delivered'")
mem delivered "$GW_PID" "after the pushes, all delivered ($DELIVERED deliveries to the TPL delivered in all; ${PUSH_RATE[delivered]} pushes/s)"

# the burst: all BURST connections open with a request begun (held 3 s: "held"),
# then each request finished, answered and closed ("burst"), SETTLE s later ("settled")
python3 "$HERE/burst_client.py" "$GW_PORT" "$BURST" /ooapi/ -H "Authorization: Bearer $TPL_TOKEN" \
  --hold 3 --timeout 60 >"$TMP/burst.log" 2>&1 &
BURST_PID=$!
PIDS+=("$BURST_PID")
wait_line "$TMP/burst.log" '^holding' "$BURST_PID" || die "burst: the client did not get to hold its connections: $(cat "$TMP/burst.log")"
sleep 1 # okegw reads the begun requests
mem held "$GW_PID" "$(head -1 "$TMP/burst.log") open at once, a request begun on each"
ESTAB=$(ss -Htn state established "( sport = :$GW_PORT )" 2>/dev/null | grep -c .)
WHAT[held]+=" ($ESTAB established at okegw's port)"
wait "$BURST_PID" || warn "burst: $(cat "$TMP/burst.log")"
forget_pid "$BURST_PID"
BURST_RESULT=$(tail -1 "$TMP/burst.log")
log "burst: $BURST_RESULT"
mem burst "$GW_PID" "right after: each request finished, answered and closed"
sleep "$SETTLE"
mem settled "$GW_PID" "$SETTLE s after the burst"
alive "$GW_PID" || die "okegw A died: $(tail -5 "$TMP/gw-ok/stderr.log")"
gw_warnings "$TMP/gw-ok" A
stop_pid "$GW_PID" TERM 30
forget_pid "$GW_PID"
[[ $STOP_RC == 0 ]] || warn "okegw A exited with status $STOP_RC on SIGTERM"

# ---- 3. okegw B: the TPL answers 503; N pushes stay open ----------------------------
#
# delivery_wait_ms = 0: the TA is answered 202 once the push is stored (waiting
# for a TPL that fails would only slow the pushes down); retry_first_ms at its
# maximum (1 h, retry_max_ms too): each resource's first attempt fails, then nothing is retried
# during the run, so the figure is the outbox at rest, not a retry storm.

TPL_PATH=/tpl503 DELIVERY_EXTRA=$'delivery_wait_ms = 0\nretry_first_ms = 3600000\nretry_max_ms = 3600000' start_okegw "$TMP/gw-503" 15
GW_PID=$OKEGW_PID
GW_PORT=$OKEGW_PORT
DB=$STORES/gw-503/bench.db
log "okegw B (pid $GW_PID) on 127.0.0.1:$GW_PORT, TPL answering 503, $MAX_OPEN_NOTE"
sleep 1
mem idle503 "$GW_PID" "idle, 1 s after start"
outbox_prime "$GW_PORT" "$ASSOCIATIONS"
push "$GW_PORT" open "$DB"
sleep 2
OPEN=$(store_count "$DB" "$OPEN_WHERE")
mem open "$GW_PID" "with $OPEN open deliveries to the TPL (pending; ${PUSH_RATE[open]} pushes/s stored)"
((OPEN >= PUSHES)) || warn "okegw B: only $OPEN deliveries open (want at least $PUSHES)"
alive "$GW_PID" || die "okegw B died: $(tail -5 "$TMP/gw-503/stderr.log")"
# the failing TPL gives one warning per failed attempt; count the others
n=$(grep '"level":"\(warn\|error\)"' "$TMP/gw-503/stderr.log" | grep -vc '503\|attempt\|retry')
[[ $n == 0 ]] || warn "okegw B logged $n warn/error lines besides the failing deliveries, e.g.: $(grep '"level":"\(warn\|error\)"' "$TMP/gw-503/stderr.log" | grep -v '503\|attempt\|retry' | head -1 | cut -c1-300)"
stop_pid "$GW_PID" TERM 60
forget_pid "$GW_PID"
[[ $STOP_RC == 0 ]] || warn "okegw B exited with status $STOP_RC on SIGTERM"
STORE_MB=$(du -sm "$STORES/gw-503" | cut -f1)

# ---- report -------------------------------------------------------------------

mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
row() { printf '%-12s %10s %10s  %s\n' "$1" "$(mib "${RSS[$1]}")" "$(mib "${HWM[$1]}")" "${WHAT[$1]}"; }

echo
echo "okegw memory benchmark: VmRSS (summed over okegw's processes) and VmHWM (peak RSS of okegw's"
echo "  main process since its start) from /proc/PID/status, in MiB"
echo "N = $PUSHES durable pushes per phase: flow-3 result PATCH by the TA over $ASSOCIATIONS deelnames, wrk -t$THREADS -c$CONNECTIONS"
echo "$("$OKEGW" --version 2>/dev/null | head -1); binary $OKEGW_ID"
echo "$WORKERS_NOTE; nginx: worker_processes $WORKERS; $(nproc) CPUs; load average at start $LOADAVG"
echo "stores: $STORES (${STORE_FS:-?} on ${STORE_DEV:-?}); max_connections = $MAX_CONNECTIONS; $MAX_OPEN_NOTE"
echo
printf '%-12s %10s %10s  %s\n' state "VmRSS" "VmHWM" ""
echo "okegw A: the TPL answers 200"
for k in idle primed delivered held burst settled; do row "$k"; done
echo "  burst: $BURST_RESULT"
echo "okegw B: the TPL answers 503 (delivery_wait_ms = 0, retry_first_ms = retry_max_ms = 3600000)"
for k in idle503 open; do row "$k"; done
echo
printf 'per open delivery: %s KiB (VmRSS with the %d open minus VmRSS idle, divided by their number); store on disk %s MiB\n' \
  "$(awk -v a="${RSS[open]}" -v b="${RSS[idle503]}" -v n="$OPEN" 'BEGIN {printf "%.2f", (a - b) / n}')" "$OPEN" "$STORE_MB"
printf 'after the delivered pushes vs. after priming: %+.1f MiB VmRSS\n' \
  "$(awk -v a="${RSS[delivered]}" -v b="${RSS[primed]}" 'BEGIN {print (a - b) / 1024}')"
printf 'burst: %+.1f MiB VmRSS with the connections open, %+.1f MiB right after, %+.1f MiB %d s later (vs. after the pushes)\n' \
  "$(awk -v a="${RSS[held]}" -v b="${RSS[delivered]}" 'BEGIN {print (a - b) / 1024}')" \
  "$(awk -v a="${RSS[burst]}" -v b="${RSS[delivered]}" 'BEGIN {print (a - b) / 1024}')" \
  "$(awk -v a="${RSS[settled]}" -v b="${RSS[delivered]}" 'BEGIN {print (a - b) / 1024}')" "$SETTLE"
echo "elapsed: $((SECONDS - T0)) s"

OK=1

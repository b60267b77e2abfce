#!/usr/bin/env bash
# vitals' Redis source side by side with Debian's prometheus-redis-exporter.
#
#   bash bench/redis.sh
#
# Installs what is missing (redis-server, prometheus-redis-exporter), builds
# vitals (release), then in a temporary directory on free loopback ports
# starts TWO identical redis-server 7.0 instances (password, maxmemory 64mb,
# 10 000 keys, a BullMQ-style wait list of 150 jobs): one watched by vitals
# (the Redis source only, queue {bullmq: emails}) and one by redis_exporter
# (defaults, -check-single-keys on the same four BullMQ keys). One Redis per
# exporter, so Redis' own INFO commandstats counts what each exporter sends.
# bench/redis_measure.py then scrapes each exporter BENCH_SEQ times in a row
# (latency, CPU per scrape from /proc/PID/stat, RSS, commands and connections
# Redis saw per scrape), then leaves them idle for BENCH_IDLE_SECS (commands
# per idle minute: what the exporter costs Redis when nobody scrapes) and
# prints one markdown table with ratios vitals/redis_exporter. Everything is
# stopped on exit.
#
# Knobs: BENCH_SEQ (300), BENCH_IDLE_SECS (60), BENCH_INTERVAL_SECS (vitals'
# interval, 5), BENCH_SKIP_BUILD=1, BENCH_KEEP=1 keeps the temp directory.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
SEQ=${BENCH_SEQ:-300}
IDLE_SECS=${BENCH_IDLE_SECS:-60}
INTERVAL_SECS=${BENCH_INTERVAL_SECS:-5}

say() { printf '[bench-redis] %s\n' "$*" >&2; }
die() {
    say "error: $*"
    for f in "${TMP:-/nonexistent}"/*.log; do
        [[ -f $f ]] && { say "--- tail of ${f##*/}"; tail -n 15 "$f" >&2; }
    done
    exit 1
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for p in redis-server redis-tools prometheus-redis-exporter; do installed "$p" || missing+=("$p"); done
if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || die "missing packages ${missing[*]}: run as root or install them"
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
    for s in redis-server prometheus-redis-exporter; do
        if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
            systemctl stop "$s" 2>/dev/null || true
        elif [[ -x /etc/init.d/$s ]]; then
            "/etc/init.d/$s" stop >/dev/null 2>&1 || true
        fi
    done
fi

if [[ -z ${BENCH_SKIP_BUILD:-} ]]; then
    say "building vitals (release)"
    cargo build --release --quiet --bin vitals
fi
VITALS=$REPO/target/release/vitals

TMP=$(mktemp -d /tmp/vitals-bench-redis-XXXXXX)
PIDS=()
cleanup() {
    local rc=$?
    set +e
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    if [[ -n ${BENCH_KEEP:-} ]]; then say "kept $TMP"; else rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
start() { # LOG COMMAND... ; sets LAST_PID
    "${@:2}" >"$1" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}
PW=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$PW" >"$TMP/redis.pw"
chmod 600 "$TMP/redis.pw"

redis() { # NAME ; sets LAST_PORT
    local p
    p=$(port)
    start "$TMP/redis-$1.log" redis-server --port "$p" --bind 127.0.0.1 --dir "$TMP" \
        --dbfilename "$1.rdb" --save "" --appendonly no --requirepass "$PW" --maxmemory 64mb
    for _ in $(seq 1 100); do
        [[ $(REDISCLI_AUTH=$PW redis-cli -p "$p" PING 2>/dev/null) == PONG ]] && break
        sleep 0.1
    done
    [[ $(REDISCLI_AUTH=$PW redis-cli -p "$p" PING 2>/dev/null) == PONG ]] || die "redis $1 not answering"
    {
        for i in $(seq 1 10000); do echo "SET key:$i value-$i"; done
        for i in $(seq 1 150); do echo "LPUSH bull:emails:wait job$i"; done
    } | REDISCLI_AUTH=$PW redis-cli -p "$p" >/dev/null
    LAST_PORT=$p
}
say "starting two identical redis-server instances"
redis for-vitals
R_VITALS=$LAST_PORT
redis for-exporter
R_EXPORTER=$LAST_PORT

V_PORT=$(port)
cat >"$TMP/vitals.yaml" <<EOF
listen: 127.0.0.1:$V_PORT
interval: ${INTERVAL_SECS}s
sources:
  host: {enabled: false}
  cgroup: {enabled: false}
  redis:
    - name: cache
      address: "127.0.0.1:$R_VITALS"
      password_file: $TMP/redis.pw
      queues: [{bullmq: emails}]
EOF
start "$TMP/vitals.log" "$VITALS" --config "$TMP/vitals.yaml"
V_PID=$LAST_PID

E_PORT=$(port)
KEYS=bull:emails:wait,bull:emails:active,bull:emails:delayed,bull:emails:failed
REDIS_PASSWORD=$PW start "$TMP/redis_exporter.log" prometheus-redis-exporter \
    -redis.addr "redis://127.0.0.1:$R_EXPORTER" -web.listen-address "127.0.0.1:$E_PORT" \
    -check-single-keys "$KEYS"
E_PID=$LAST_PID

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
cat <<EOF

## vitals Redis source vs redis_exporter, $(date -u '+%Y-%m-%d %H:%M UTC')

- command: \`bash bench/redis.sh\` (BENCH_SEQ=$SEQ BENCH_IDLE_SECS=$IDLE_SECS BENCH_INTERVAL_SECS=$INTERVAL_SECS)
- machine: $(nproc) CPUs, ${cpu_model:-unknown CPU}, Linux $(uname -r); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)
- vitals $("$VITALS" --version | sed 's/^vitals //'): the Redis source only (host and cgroup off), interval ${INTERVAL_SECS}s, one queue {bullmq: emails} (4 keys), default checks
- redis_exporter $(dpkg-query -W -f='${Version}' prometheus-redis-exporter): defaults, -check-single-keys on the same 4 keys
- servers: $(redis-server --version | cut -d' ' -f1-3), one per exporter, 10 000 keys, 150 jobs in bull:emails:wait

EOF
python3 "$REPO/bench/redis_measure.py" --seq "$SEQ" --idle-secs "$IDLE_SECS" --password-file "$TMP/redis.pw" \
    --exporter vitals "http://127.0.0.1:$V_PORT/metrics" "$V_PID" "$R_VITALS" \
    '^vitals_redis_queue_length\{target="cache",queue="emails:wait"\} 150$' \
    --exporter redis_exporter "http://127.0.0.1:$E_PORT/metrics" "$E_PID" "$R_EXPORTER" \
    '^redis_key_size\{db="db0",key="bull:emails:wait"\} 150$' || die "measuring failed"
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

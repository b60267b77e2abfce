#!/usr/bin/env bash
# vitals side by side with the exporters users would otherwise run.
#
#   bash bench/run.sh
#
# Installs what is missing from Debian (PostgreSQL 15, PgBouncer,
# node_exporter, postgres_exporter, the PgBouncer exporter), stops any
# service apt started for a package it installed, builds vitals (release)
# and the measuring client, then in a temporary directory on free loopback
# ports starts a PostgreSQL 15 primary, a streaming standby and PgBouncer,
# the anchors (node_exporter, postgres_exporter against the primary and
# against the standby, the PgBouncer exporter) and ONE vitals with host,
# cgroup, both PostgreSQL targets and PgBouncer. bench/measure scrapes them
# one after the other, then watches them idle, and prints one table (ratios
# vitals/anchor) and the budget with PASS/FAIL. Everything is stopped on
# exit, whatever happens.
#
# Knobs (environment): BENCH_SEQ (sequential scrapes, 300),
# BENCH_CLIENTS (8), BENCH_CONC_SECS (10), BENCH_IDLE_SECS (60),
# BENCH_INTERVAL_SECS (vitals' sampling interval, 5), BENCH_KEEP=1 keeps
# the temporary directory (logs) after the servers are stopped,
# BENCH_SKIP_BUILD=1 uses the binaries already built.
#
# Soak: BENCH_SOAK_MINUTES=30 bash bench/run.sh starts the same cluster and
# vitals with every source on (plus a process target and an HTTP probe),
# scrapes it with wrk (2 connections, as fast as it answers) for that many
# minutes, and prints vitals' RSS and peak RSS once a minute instead of the
# side-by-side table. Exit status 0 unless the run itself failed.
# Push: BENCH_PUSH_MINUTES=3 bash bench/run.sh starts the same cluster, a
# VictoriaMetrics, and two vitals with every source on: one pushing to
# VictoriaMetrics with remote_write (no scraper), one scraped by Prometheus
# in agent mode (--enable-feature=agent, Debian's prometheus) that
# remote-writes to the same VictoriaMetrics, both at BENCH_INTERVAL_SECS.
# After a warm-up it measures CPU seconds per minute and RSS of each process
# over that many minutes, and bytes sent per sample from each pusher's own
# counters, and prints that table instead of the side-by-side one.
# Exit status: 0 all budget lines pass, 2 one fails, 1 the run failed.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

SEQ=${BENCH_SEQ:-300}
CLIENTS=${BENCH_CLIENTS:-8}
CONC_SECS=${BENCH_CONC_SECS:-10}
IDLE_SECS=${BENCH_IDLE_SECS:-60}
INTERVAL_SECS=${BENCH_INTERVAL_SECS:-5}
SOAK_MINUTES=${BENCH_SOAK_MINUTES:-0}
PUSH_MINUTES=${BENCH_PUSH_MINUTES:-0}
PG_BIN=/usr/lib/postgresql/15/bin

say() { printf '[bench] %s\n' "$*" >&2; }
die() {
    say "error: $*"
    # The logs of what was started, to say why.
    for f in "${TMP:-/nonexistent}"/*.log; do
        [[ -f $f ]] && { say "--- tail of ${f##*/}"; tail -n 15 "$f" >&2; }
    done
    exit 1
}

# ------------------------------------------------------------ packages ---
# package -> the init service its installation may start
declare -A SERVICE=(
    [postgresql-15]=postgresql
    [pgbouncer]=pgbouncer
    [prometheus-node-exporter]=prometheus-node-exporter
    [prometheus-postgres-exporter]=prometheus-postgres-exporter
    [prometheus-pgbouncer-exporter]=prometheus-pgbouncer-exporter
)
((SOAK_MINUTES > 0)) && SERVICE[wrk]=none
((PUSH_MINUTES > 0)) && SERVICE[victoria-metrics]=victoria-metrics && SERVICE[prometheus]=prometheus
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for p in "${!SERVICE[@]}"; do installed "$p" || missing+=("$p"); done
if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || die "missing packages ${missing[*]}: run as root (apt-get install) or install them"
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=300 "${missing[@]}" >&2
    # A package's postinst may start its service (on a machine where
    # services start at all); the benchmark runs its own instances.
    for p in "${missing[@]}"; do
        s=${SERVICE[$p]}
        if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
            systemctl stop "$s" 2>/dev/null || true
        elif [[ -x /etc/init.d/$s ]]; then
            "/etc/init.d/$s" stop >/dev/null 2>&1 || true
        fi
    done
fi
command -v cargo >/dev/null || die "cargo not found: install a Rust toolchain"

# --------------------------------------------------------------- build ---
if [[ -z ${BENCH_SKIP_BUILD:-} ]]; then
    say "building vitals (release) and bench/measure"
    cargo build --release --quiet --bin vitals
    cargo build --release --quiet --manifest-path bench/measure/Cargo.toml \
        --target-dir "$REPO/target/bench-measure"
fi
VITALS=$REPO/target/release/vitals
MEASURE=$REPO/target/bench-measure/release/vitals-bench-measure

# ----------------------------------------------------- run as postgres ---
# The servers refuse to run as root.
if [[ $(id -u) == 0 ]]; then
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

TMP=$(mktemp -d /tmp/vitals-bench-XXXXXX)
PIDS=()          # exporters started here, stopped by pid
PG_DATA=()       # servers started here
BOUNCER_PIDFILE=

cleanup() {
    local rc=$?
    set +e
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    if [[ -n $BOUNCER_PIDFILE && -s $BOUNCER_PIDFILE ]]; then
        kill -INT "$(cat "$BOUNCER_PIDFILE")" 2>/dev/null
    fi
    for ((i = ${#PG_DATA[@]} - 1; i >= 0; i--)); do
        as_pg "$PG_BIN/pg_ctl" -D "${PG_DATA[i]}" -m immediate -w stop >/dev/null 2>&1
    done
    if [[ -n ${BENCH_KEEP:-} ]]; then say "kept $TMP"; else rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

[[ $(id -u) == 0 ]] && chown postgres:postgres "$TMP"
chmod 755 "$TMP"
port() { "$MEASURE" free-port; }
# Passwords for this run only.
SUPER_PW=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
MON_PW=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$SUPER_PW" >"$TMP/super.pw"
printf '%s\n' "$MON_PW" >"$TMP/monitor.pw"
chmod 600 "$TMP"/*.pw
[[ $(id -u) == 0 ]] && chown postgres:postgres "$TMP"/*.pw

psql_su() { as_pg "$PG_BIN/psql" -h "$TMP" -p "$1" -U postgres -d postgres -X -A -t -q -v ON_ERROR_STOP=1 -c "$2"; }

# ------------------------------------------------------------- cluster ---
say "starting PostgreSQL 15 primary + streaming standby + PgBouncer in a temporary directory"
P_PORT=$(port)
as_pg "$PG_BIN/initdb" -D "$TMP/primary" -U postgres -E UTF8 --no-sync \
    --auth-local=trust --auth-host=scram-sha-256 --pwfile="$TMP/super.pw" >"$TMP/initdb.log"
# log_statement = all with the application name and virtual transaction
# id (%v) is how statements and transactions are attributed to exporters.
cat >>"$TMP/primary/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $P_PORT
unix_socket_directories = '$TMP'
max_connections = 40
shared_buffers = 16MB
fsync = off
synchronous_commit = off
full_page_writes = off
autovacuum = off
wal_level = replica
max_wal_senders = 5
max_replication_slots = 5
wal_receiver_status_interval = 1s
log_statement = 'all'
log_line_prefix = '%n [%p] app=%a vxid=%v '
EOF
PG_DATA+=("$TMP/primary")
as_pg "$PG_BIN/pg_ctl" -D "$TMP/primary" -l "$TMP/primary.log" -w -t 60 start >/dev/null
psql_su "$P_PORT" "CREATE ROLE monitor LOGIN PASSWORD '$MON_PW' IN ROLE pg_monitor;"

S_PORT=$(port)
as_pg "$PG_BIN/pg_basebackup" -h "$TMP" -p "$P_PORT" -U postgres -D "$TMP/standby" \
    -R -C -S standby1_slot -X stream --no-sync
printf "port = %s\ncluster_name = 'standby1'\n" "$S_PORT" >>"$TMP/standby/postgresql.conf"
PG_DATA+=("$TMP/standby")
as_pg "$PG_BIN/pg_ctl" -D "$TMP/standby" -l "$TMP/standby.log" -w -t 60 start >/dev/null
for _ in $(seq 1 300); do
    [[ $(psql_su "$S_PORT" "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')") == streaming ]] && break
    sleep 0.2
done
[[ $(psql_su "$S_PORT" "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')") == streaming ]] ||
    die "standby not streaming after 60 s"

B_PORT=$(port)
BOUNCER_PIDFILE=$TMP/pgbouncer.pid
printf '"monitor" "%s"\n"postgres" "%s"\n' "$MON_PW" "$SUPER_PW" >"$TMP/userlist.txt"
cat >"$TMP/pgbouncer.ini" <<EOF
[databases]
app = host=127.0.0.1 port=$P_PORT dbname=postgres pool_size=3
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $B_PORT
unix_socket_dir = $TMP
auth_type = scram-sha-256
auth_file = $TMP/userlist.txt
stats_users = monitor
admin_users = postgres
pool_mode = session
max_client_conn = 50
default_pool_size = 3
logfile = $TMP/pgbouncer.log
pidfile = $BOUNCER_PIDFILE
EOF
chmod 600 "$TMP/userlist.txt"
[[ $(id -u) == 0 ]] && chown postgres:postgres "$TMP/userlist.txt" "$TMP/pgbouncer.ini"
# TZ=UTC: measure reads the times of its log lines.
as_pg env TZ=UTC pgbouncer -d "$TMP/pgbouncer.ini"
# PgBouncer logs console commands ("got admin query") only at verbose 2:
# measure turns that on for the idle window, when only vitals talks to the
# console, to count vitals' statements per round on that target too.
cat >"$TMP/console-verbose.sh" <<EOF
#!/bin/sh
PGPASSWORD='$SUPER_PW' PGCONNECT_TIMEOUT=5 exec "$PG_BIN/psql" -h 127.0.0.1 -p $B_PORT -U postgres -d pgbouncer -X -q -c "SET verbose = \$1" >/dev/null
EOF
chmod 700 "$TMP/console-verbose.sh"

# ----------------------------------------------------------- exporters ---
start() { # NAME LOG COMMAND... ; sets LAST_PID
    "${@:3}" >"$2" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

NODE_PORT=$(port)
start node_exporter "$TMP/node_exporter.log" \
    prometheus-node-exporter --web.listen-address="127.0.0.1:$NODE_PORT"
NODE_PID=$LAST_PID

dsn() { echo "postgresql://monitor:$MON_PW@127.0.0.1:$1/postgres?sslmode=disable&application_name=$2"; }
PGX_P_PORT=$(port)
DATA_SOURCE_NAME=$(dsn "$P_PORT" pgexp_primary) start pgexp_primary "$TMP/pgexp_primary.log" \
    prometheus-postgres-exporter --web.listen-address="127.0.0.1:$PGX_P_PORT"
PGX_P_PID=$LAST_PID
PGX_S_PORT=$(port)
DATA_SOURCE_NAME=$(dsn "$S_PORT" pgexp_standby) start pgexp_standby "$TMP/pgexp_standby.log" \
    prometheus-postgres-exporter --web.listen-address="127.0.0.1:$PGX_S_PORT"
PGX_S_PID=$LAST_PID

# Debian's PgBouncer exporter 1.7 exits at startup against PgBouncer 1.18
# (SHOW STATS lost a column it reads). Run it as shipped first and report
# what happens; if it died, measure the same code through a one-line
# compatibility shim instead, and say so in the output.
PGB_PORT=$(port)
PGB_ARGS=(--host 127.0.0.1 --port "$PGB_PORT" --pgbouncer-host 127.0.0.1
    --pgbouncer-port "$B_PORT" --pgbouncer-user monitor)
PGPASSWORD=$MON_PW start pgbouncer_exporter "$TMP/pgbouncer_exporter_shipped.log" \
    prometheus-pgbouncer-exporter "${PGB_ARGS[@]}"
PGB_PID=$LAST_PID
PGB_LOG=$TMP/pgbouncer_exporter_shipped.log
PGB_NAME=pgbouncer_exporter
PGB_NOTE=
if "$MEASURE" wait "http://127.0.0.1:$PGB_PORT/" 15 2>/dev/null; then
    PGB_NOTE="PgBouncer exporter $(dpkg-query -W -f='${Version}' prometheus-pgbouncer-exporter) ran as shipped."
else
    kill "$PGB_PID" 2>/dev/null || true
    wait "$PGB_PID" 2>/dev/null || true
    cause=$(grep -E '^[A-Za-z.]*(Error|Exception)' "$TMP/pgbouncer_exporter_shipped.log" | tail -1)
    PGB_NOTE="PgBouncer exporter $(dpkg-query -W -f='${Version}' prometheus-pgbouncer-exporter) AS SHIPPED EXITS AT STARTUP against $(pgbouncer --version 2>&1 | head -1): ${cause:-no error line in its log} (SHOW STATS has no total_requests column any more; PgBouncer 1.8 renamed it total_query_count). The pgbouncer_exporter column measures the same code through bench/pgbouncer_exporter_compat.py, which only copies total_query_count into total_requests."
    say "$PGB_NOTE"
    PGB_NAME="pgbouncer_exporter (compat shim)"
    PGPASSWORD=$MON_PW start pgbouncer_exporter "$TMP/pgbouncer_exporter.log" \
        /usr/bin/python3 "$REPO/bench/pgbouncer_exporter_compat.py" "${PGB_ARGS[@]}"
    PGB_PID=$LAST_PID
    PGB_LOG=$TMP/pgbouncer_exporter.log
fi

V_PORT=$(port)
cat >"$TMP/vitals.yaml" <<EOF
listen: 127.0.0.1:$V_PORT
interval: ${INTERVAL_SECS}s
sources:
  host: {enabled: true}
  cgroup: {enabled: true, target: self}
  postgres:
    - {name: primary, dsn: "host=127.0.0.1 port=$P_PORT user=monitor dbname=postgres", password_file: $TMP/monitor.pw}
    - {name: standby, dsn: "host=127.0.0.1 port=$S_PORT user=monitor dbname=postgres", password_file: $TMP/monitor.pw}
  pgbouncer:
    - {name: bouncer, dsn: "host=127.0.0.1 port=$B_PORT user=monitor dbname=pgbouncer", password_file: $TMP/monitor.pw}
EOF
if ((SOAK_MINUTES > 0 || PUSH_MINUTES > 0)); then
    # Every source on: also a process target and an HTTP probe (of vitals'
    # own liveness endpoint, the one HTTP server sure to be there).
    cat >>"$TMP/vitals.yaml" <<EOF
  processes:
    - {name: postgres, match: {comm: '^postgres\$'}}
  http_probes:
    - {name: self, url: "http://127.0.0.1:$V_PORT/health/live"}
EOF
fi
start vitals "$TMP/vitals.log" "$VITALS" --config "$TMP/vitals.yaml"
V_PID=$LAST_PID

say "waiting for every exporter to answer"
"$MEASURE" wait "http://127.0.0.1:$V_PORT/health/ready" 60 || { cat "$TMP/vitals.log" >&2; die "vitals not ready"; }
"$MEASURE" wait "http://127.0.0.1:$NODE_PORT/metrics" 60 || die "node_exporter not answering"
"$MEASURE" wait "http://127.0.0.1:$PGX_P_PORT/metrics" 60 || die "postgres_exporter (primary) not answering"
"$MEASURE" wait "http://127.0.0.1:$PGX_S_PORT/metrics" 60 || die "postgres_exporter (standby) not answering"
"$MEASURE" wait "http://127.0.0.1:$PGB_PORT/" 60 || die "$PGB_NAME not answering"
# One full round of every vitals source after ready.
sleep "$INTERVAL_SECS"
# A cheap exporter that sees nothing proves nothing: every one must be
# reading what it is meant to before anything is measured.
expect() { # URL PATTERN WHAT
    "$MEASURE" get "$1" >"$TMP/check.prom" || die "$3: cannot scrape $1"
    grep -Eq "$2" "$TMP/check.prom" || die "$3: no line matching $2 in its exposition"
}
V_URL=http://127.0.0.1:$V_PORT/metrics
expect "$V_URL" '^vitals_pg_up\{target="primary"\} 1$' "vitals (PostgreSQL primary)"
expect "$V_URL" '^vitals_pg_up\{target="standby"\} 1$' "vitals (PostgreSQL standby)"
expect "$V_URL" '^vitals_pg_replication_stream_up\{target="standby"\} 1$' "vitals (replication)"
expect "$V_URL" '^vitals_pgbouncer_up\{target="bouncer"\} 1$' "vitals (PgBouncer)"
expect "$V_URL" '^vitals_host_memory_total_bytes ' "vitals (host)"
expect "$V_URL" '^vitals_cgroup_memory_usage_bytes ' "vitals (cgroup)"
"$MEASURE" get "$V_URL" >"$TMP/vitals.prom"
expect "http://127.0.0.1:$NODE_PORT/metrics" '^node_memory_MemTotal_bytes ' node_exporter
expect "http://127.0.0.1:$PGX_P_PORT/metrics" '^pg_up 1$' "postgres_exporter (primary)"
expect "http://127.0.0.1:$PGX_S_PORT/metrics" '^pg_up 1$' "postgres_exporter (standby)"
expect "http://127.0.0.1:$PGB_PORT/metrics" '^pgbouncer_pools ' "$PGB_NAME"

# ----------------------------------------------------------------- soak ---
if ((SOAK_MINUTES > 0)); then
    rss() { awk '/^VmRSS:/ {r=$2} /^VmHWM:/ {h=$2} END {printf "%.1f %.1f\n", r/1024, h/1024}' "/proc/$V_PID/status"; }
    echo
    echo "## vitals soak, $(date -u '+%Y-%m-%d %H:%M UTC'): ${SOAK_MINUTES} min of wrk -t1 -c2 against /metrics"
    echo
    echo "| minute | RSS MiB | peak RSS MiB | requests in the minute | non-2xx or socket errors |"
    echo "|---:|---:|---:|---:|---:|"
    read -r r h < <(rss)
    echo "| 0 | $r | $h | – | – |"
    for ((m = 1; m <= SOAK_MINUTES; m++)); do
        out=$(wrk -t1 -c2 -d58s --timeout 5s "http://127.0.0.1:$V_PORT/metrics" 2>&1) || die "wrk failed: $out"
        reqs=$(awk '/requests in/ {print $1}' <<<"$out")
        errs=$(awk '/Non-2xx/ {n+=$NF} /Socket errors/ {gsub(/,/, ""); n+=$4+$6+$8+$10} END {print n+0}' <<<"$out")
        sleep 2
        read -r r h < <(rss)
        echo "| $m | $r | $h | $reqs | $errs |"
    done
    "$MEASURE" get "$V_URL" >"$TMP/soak-end.prom" || die "vitals stopped answering"
    grep -Eq '^vitals_source_success\{source="postgres/primary"\} 1$' "$TMP/soak-end.prom" || die "primary source not healthy at the end"
    echo
    echo "sources succeeding at the end: $(grep -c '^vitals_source_success{.*} 1$' "$TMP/soak-end.prom") of $(grep -c '^vitals_source_success{' "$TMP/soak-end.prom")"
    echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    exit 0
fi

# ----------------------------------------------------------------- push ---
if ((PUSH_MINUTES > 0)); then
    VM_PORT=$(port)
    start victoria-metrics "$TMP/victoria-metrics.log" \
        victoria-metrics -storageDataPath="$TMP/vm" -httpListenAddr="127.0.0.1:$VM_PORT" -loggerLevel=WARN
    "$MEASURE" wait "http://127.0.0.1:$VM_PORT/health" 60 || die "victoria-metrics not answering"
    VP_PORT=$(port)
    sed "s/^listen: .*/listen: 127.0.0.1:$VP_PORT/" "$TMP/vitals.yaml" >"$TMP/vitals-push.yaml"
    cat >>"$TMP/vitals-push.yaml" <<EOF
remote_write:
  - url: http://127.0.0.1:$VM_PORT/api/v1/write
    external_labels: {instance: vitals-push}
EOF
    start vitals-push "$TMP/vitals-push.log" "$VITALS" --config "$TMP/vitals-push.yaml"
    VP_PID=$LAST_PID
    AG_PORT=$(port)
    cat >"$TMP/agent.yml" <<EOF
global:
  scrape_interval: ${INTERVAL_SECS}s
scrape_configs:
  - job_name: vitals
    static_configs: [{targets: ["127.0.0.1:$V_PORT"]}]
remote_write:
  - url: http://127.0.0.1:$VM_PORT/api/v1/write
EOF
    start prometheus-agent "$TMP/agent.log" prometheus --enable-feature=agent \
        --config.file="$TMP/agent.yml" --storage.agent.path="$TMP/agent" \
        --web.listen-address="127.0.0.1:$AG_PORT" --log.level=warn
    AG_PID=$LAST_PID
    "$MEASURE" wait "http://127.0.0.1:$VP_PORT/health/ready" 60 || die "vitals (push) not ready"
    "$MEASURE" wait "http://127.0.0.1:$AG_PORT/-/ready" 60 || die "prometheus agent not ready"
    # Warm-up: connections open, first sends done, series created.
    sleep $((INTERVAL_SECS * 4))
    ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
    kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
    counter() { # URL NAME: the sum of every series of NAME
        "$MEASURE" get "$1" | awk -v n="$2" '$1 ~ "^"n"({|$)" {s += $NF} END {printf "%.0f", s}'
    }
    VP_URL=http://127.0.0.1:$VP_PORT/metrics
    AG_URL=http://127.0.0.1:$AG_PORT/metrics
    t0_vp=$(ticks "$VP_PID"); t0_v=$(ticks "$V_PID"); t0_ag=$(ticks "$AG_PID")
    s0_vp=$(counter "$VP_URL" vitals_remote_write_samples_sent_total)
    b0_vp=$(counter "$VP_URL" vitals_remote_write_bytes_sent_total)
    s0_ag=$(counter "$AG_URL" prometheus_remote_storage_samples_total)
    b0_ag=$(counter "$AG_URL" prometheus_remote_storage_bytes_total)
    load0=$(cut -d' ' -f1-3 /proc/loadavg)
    say "measuring for $PUSH_MINUTES min"
    sleep $((PUSH_MINUTES * 60))
    t1_vp=$(ticks "$VP_PID"); t1_v=$(ticks "$V_PID"); t1_ag=$(ticks "$AG_PID")
    s1_vp=$(counter "$VP_URL" vitals_remote_write_samples_sent_total)
    b1_vp=$(counter "$VP_URL" vitals_remote_write_bytes_sent_total)
    s1_ag=$(counter "$AG_URL" prometheus_remote_storage_samples_total)
    b1_ag=$(counter "$AG_URL" prometheus_remote_storage_bytes_total)
    dropped=$(counter "$VP_URL" vitals_remote_write_samples_dropped_total)
    ((s1_vp > s0_vp)) || die "vitals sent nothing"
    ((s1_ag > s0_ag)) || die "the prometheus agent sent nothing"
    hz=$(getconf CLK_TCK)
    cpu() { awk -v a="$1" -v b="$2" -v hz="$hz" -v m="$PUSH_MINUTES" 'BEGIN {printf "%.3f", (b - a) / hz / m}'; }
    mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
    per() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.2f", b / s}'; }
    c_vp=$(cpu "$t0_vp" "$t1_vp"); c_v=$(cpu "$t0_v" "$t1_v"); c_ag=$(cpu "$t0_ag" "$t1_ag")
    r_vp=$(kib "$VP_PID" VmRSS); r_v=$(kib "$V_PID" VmRSS); r_ag=$(kib "$AG_PID" VmRSS)
    cat <<EOF

## vitals push vs Prometheus agent, $(date -u '+%Y-%m-%d %H:%M UTC')

- command: \`BENCH_PUSH_MINUTES=$PUSH_MINUTES bash bench/run.sh\` (BENCH_INTERVAL_SECS=$INTERVAL_SECS)
- machine: $(nproc) CPUs, $(awk '/^MemTotal:/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r); load average $load0 at the start of the window
- each vitals: sources host, cgroup, postgres primary + standby, pgbouncer, a process target, an HTTP probe; interval ${INTERVAL_SECS}s
- receiver: VictoriaMetrics $(dpkg-query -W -f='${Version}' victoria-metrics); agent: Prometheus $(dpkg-query -W -f='${Version}' prometheus)

| process | what it does | CPU s/min | RSS MiB | samples sent/min | bytes sent/sample |
|---|---|---:|---:|---:|---:|
| vitals (push) | samples, remote-writes every round | $c_vp | $(mib "$r_vp") | $(((s1_vp - s0_vp) / PUSH_MINUTES)) | $(per $((b1_vp - b0_vp)) $((s1_vp - s0_vp))) |
| vitals (scraped) | samples, serves /metrics to the agent | $c_v | $(mib "$r_v") | – | – |
| prometheus --enable-feature=agent | scrapes vitals (scraped), remote-writes | $c_ag | $(mib "$r_ag") | $(((s1_ag - s0_ag) / PUSH_MINUTES)) | $(per $((b1_ag - b0_ag)) $((s1_ag - s0_ag))) |

EOF
    awk -v vp="$c_vp" -v v="$c_v" -v ag="$c_ag" -v rvp="$r_vp" -v rv="$r_v" -v rag="$r_ag" 'BEGIN {
        push_cpu = vp - v; push_rss = (rvp - rv) / 1024
        printf "- push cost (vitals push minus vitals scraped): %.3f CPU s/min, %.1f MiB RSS\n", push_cpu, push_rss
        printf "- push cost / agent: CPU %.3f, RSS %.3f (goal: below 0.1)\n", push_cpu / ag, push_rss / (rag / 1024)
        printf "- whole vitals (push) / agent: CPU %.3f, RSS %.3f\n", vp / ag, rvp / rag
    }'
    echo "- samples dropped by vitals (push): ${dropped:-0}; load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    exit 0
fi

# --------------------------------------------------------------- report ---
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
ver() { "$@" 2>&1 | head -1; }
cat <<EOF

## vitals benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')

- command: \`bash bench/run.sh\` (BENCH_SEQ=$SEQ BENCH_CLIENTS=$CLIENTS BENCH_CONC_SECS=$CONC_SECS BENCH_IDLE_SECS=$IDLE_SECS BENCH_INTERVAL_SECS=$INTERVAL_SECS)
- machine: $(nproc) CPUs, ${cpu_model:-unknown CPU}, $(awk '/^MemTotal:/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r)
- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)
- vitals $(ver "$VITALS" --version | sed 's/^vitals //'): one process, sources host, cgroup, postgres primary + standby, pgbouncer, interval ${INTERVAL_SECS}s, default checks
- anchors: node_exporter $(dpkg-query -W -f='${Version}' prometheus-node-exporter) (default collectors), postgres_exporter $(dpkg-query -W -f='${Version}' prometheus-postgres-exporter) ×2 (defaults), PgBouncer exporter $(dpkg-query -W -f='${Version}' prometheus-pgbouncer-exporter)
- servers: $(ver "$PG_BIN/postgres" --version), $(ver pgbouncer --version)

EOF
rc=0
"$MEASURE" --seq "$SEQ" --clients "$CLIENTS" --conc-secs "$CONC_SECS" \
    --idle-secs "$IDLE_SECS" --interval-secs "$INTERVAL_SECS" --clk-tck "$(getconf CLK_TCK)" \
    --exporter vitals "http://127.0.0.1:$V_PORT/metrics" "$V_PID" vitals "$TMP/vitals.log" \
    --exporter node_exporter "http://127.0.0.1:$NODE_PORT/metrics" "$NODE_PID" - "$TMP/node_exporter.log" \
    --exporter "postgres_exporter (primary)" "http://127.0.0.1:$PGX_P_PORT/metrics" "$PGX_P_PID" pgexp_primary "$TMP/pgexp_primary.log" \
    --exporter "postgres_exporter (standby)" "http://127.0.0.1:$PGX_S_PORT/metrics" "$PGX_S_PID" pgexp_standby "$TMP/pgexp_standby.log" \
    --exporter "$PGB_NAME" "http://127.0.0.1:$PGB_PORT/metrics" "$PGB_PID" - "$PGB_LOG" \
    --pg-log primary "$TMP/primary.log" --pg-log standby "$TMP/standby.log" \
    --console-log bouncer "$TMP/pgbouncer.log" \
    --idle-start-cmd "sh '$TMP/console-verbose.sh' 2" --idle-end-cmd "sh '$TMP/console-verbose.sh' 0" \
    --note "$PGB_NOTE" || rc=$?
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$rc"

#!/usr/bin/env bash
# What TLS costs per round: two vitals watching the same throwaway
# PostgreSQL 15 at the same time, one over plain text (sslmode=disable), one
# over verified TLS (sslmode=verify-full, a CA and server certificate made
# here with openssl). Prints one Markdown table: CPU per round and
# statements per round of each, and the ratio TLS / plain (budget: <= 1.1;
# the connection is long-lived, so only the first round pays the handshake).
#
#   bash bench/db_tls.sh            # as root or as a user who can run initdb
#
# CPU is read from /proc/PID/task/*/schedstat (nanoseconds on CPU, every
# thread), not from /proc/PID/stat's 10 ms ticks: a round costs well under
# a tick. Rounds and statements come from the server's log
# (log_statement = all, application_name in the prefix): one
# `SHOW server_version_num` probe per round.
#
# Knobs: BENCH_TLS_SECS (60, the window), BENCH_TLS_INTERVAL (250ms, both
# agents' interval), BENCH_TLS_WARMUP_SECS (5), VITALS_BIN
# (target/release/vitals, built when missing).
set -euo pipefail

PG_BIN=/usr/lib/postgresql/15/bin
SECS=${BENCH_TLS_SECS:-60}
INTERVAL=${BENCH_TLS_INTERVAL:-250ms}
WARMUP=${BENCH_TLS_WARMUP_SECS:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
VITALS=${VITALS_BIN:-$REPO/target/release/vitals}

[ -x "$VITALS" ] || (cd "$REPO" && cargo build --release --bin vitals)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

DIR=$(mktemp -d /tmp/vitals-dbtls-bench.XXXXXX)
AS=()
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    "${AS[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup EXIT

# A CA and a server certificate for localhost.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=vitals bench CA" -keyout "$DIR/ca.key" -out "$DIR/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$DIR/server.key" -out "$DIR/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$DIR/ext.cnf"
openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" \
    -CAcreateserial -days 2 -extfile "$DIR/ext.cnf" -out "$DIR/server.crt" 2>/dev/null
chmod 600 "$DIR/server.key"
if [ "$(id -u)" = 0 ]; then chown -R postgres "$DIR"; AS=(runuser -u postgres --); fi

PORT=$(free_port)
"${AS[@]}" "$PG_BIN/initdb" -D "$DIR/data" -U postgres --auth=trust --no-sync >/dev/null
cat >>"$DIR/data/postgresql.conf" <<EOF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
fsync = off
ssl = on
ssl_cert_file = '$DIR/server.crt'
ssl_key_file = '$DIR/server.key'
log_statement = 'all'
log_line_prefix = '%a: '
EOF
"${AS[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w start >/dev/null
"${AS[@]}" "$PG_BIN/psql" -h "$DIR" -p "$PORT" -U postgres -X -q -d postgres \
    -c "CREATE ROLE monitor LOGIN IN ROLE pg_monitor" >/dev/null

start_vitals() { # name, DSN TLS keys
    local vport
    vport=$(free_port)
    cat >"$DIR/$1.yaml" <<EOF
listen: 127.0.0.1:$vport
interval: $INTERVAL
sources:
  host: {enabled: false}
  cgroup: {enabled: false}
  postgres:
    - name: $1
      dsn: "host=localhost port=$PORT user=monitor dbname=postgres application_name=bench_$1 $2"
      statements: {top: 0}
EOF
    "$VITALS" --config "$DIR/$1.yaml" >"$DIR/$1.log" 2>&1 &
    PIDS+=($!)
    echo $!
}
PLAIN=$(start_vitals plain "sslmode=disable")
TLS=$(start_vitals tls "sslmode=verify-full sslrootcert=$DIR/ca.crt")
sleep "$WARMUP"

cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%d\n", s}'; }
lines() { grep -c "^bench_$1: LOG:  $2" "$DIR/log" || true; }

P0=$(cpu_ns "$PLAIN"); T0=$(cpu_ns "$TLS")
PR0=$(lines plain "statement: SHOW server_version_num"); TR0=$(lines tls "statement: SHOW server_version_num")
PS0=$(lines plain ""); TS0=$(lines tls "")
sleep "$SECS"
P1=$(cpu_ns "$PLAIN"); T1=$(cpu_ns "$TLS")
PR1=$(lines plain "statement: SHOW server_version_num"); TR1=$(lines tls "statement: SHOW server_version_num")
PS1=$(lines plain ""); TS1=$(lines tls "")

SSL=$("${AS[@]}" "$PG_BIN/psql" -h "$DIR" -p "$PORT" -U postgres -X -q -A -t -d postgres \
    -c "SELECT a.application_name || '=' || s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
        WHERE a.application_name LIKE 'bench_%' ORDER BY 1" | tr '\n' ' ')

python3 - "$((P1 - P0))" "$((PR1 - PR0))" "$((PS1 - PS0))" \
    "$((T1 - T0))" "$((TR1 - TR0))" "$((TS1 - TS0))" "$SSL" "$INTERVAL" "$SECS" <<'PY'
import sys
p_ns, p_rounds, p_stmts, t_ns, t_rounds, t_stmts = map(int, sys.argv[1:7])
ssl, interval, secs = sys.argv[7:10]
if min(p_rounds, t_rounds) == 0:
    sys.exit("no rounds counted in the server log")
p_cpu, t_cpu = p_ns / p_rounds / 1e6, t_ns / t_rounds / 1e6
p_spr, t_spr = p_stmts / p_rounds, t_stmts / t_rounds
print(f"sessions: {ssl}; interval {interval}, window {secs} s\n")
print("| | plain (sslmode=disable) | TLS (verify-full) | TLS / plain |")
print("|---|---|---|---|")
print(f"| rounds in the window | {p_rounds} | {t_rounds} | |")
print(f"| CPU per round (ms, all threads) | {p_cpu:.3f} | {t_cpu:.3f} | {t_cpu / p_cpu:.2f} |")
print(f"| statements per round | {p_spr:.2f} | {t_spr:.2f} | {t_spr / p_spr:.2f} |")
verdict = "PASS" if t_cpu / p_cpu <= 1.1 and t_spr == p_spr else "FAIL"
print(f"\nbudget: CPU ratio <= 1.1 and the same statements per round: {verdict}")
PY

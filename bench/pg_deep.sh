#!/usr/bin/env bash
# Server-side cost of vitals' PostgreSQL figures (top statements, database
# ratios, wraparound, xmin horizon, dead tuples, unused indexes, WAL) against
# postgres_exporter's equivalent collectors, on a throwaway PostgreSQL 15
# with many databases, statements and connections. Prints one Markdown table.
#
#   bash bench/pg_deep.sh            # as root or as a user who can run initdb
#
# Knobs: BENCH_PG_DBS (50), BENCH_PG_STATEMENTS (2000), BENCH_PG_CONNECTIONS
# (200), BENCH_PG_SECS (120), BENCH_PG_SCRAPE_SECS (15),
# BENCH_PG_VITALS_INTERVAL (vitals' default, 5s), BENCH_PG_WARMUP_SECS (65),
# VITALS_BIN
# (target/release/vitals, built when missing: the agent shares the 2 cores
# with the server, so it runs as users run it).
#
# Server time is read from pg_stat_statements itself (track_planning on:
# planning + execution), per role: vitals logs in as vitals_mon, the exporter
# as exporter_mon. Both watch the same server at the same time.
set -euo pipefail

PG_BIN=/usr/lib/postgresql/15/bin
DBS=${BENCH_PG_DBS:-50}
STATEMENTS=${BENCH_PG_STATEMENTS:-2000}
CONNECTIONS=${BENCH_PG_CONNECTIONS:-200}
SECS=${BENCH_PG_SECS:-120}
SCRAPE=${BENCH_PG_SCRAPE_SECS:-15}
# Seconds both agents run before the window: vitals' first reads of
# pg_stat_statements and of the texts of its first top list fall in it.
WARMUP=${BENCH_PG_WARMUP_SECS:-65}
# vitals' sampling interval; empty: its default (5 s).
VITALS_INTERVAL=${BENCH_PG_VITALS_INTERVAL:-}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
VITALS=${VITALS_BIN:-$REPO/target/release/vitals}
EXPORTER=$(command -v prometheus-postgres-exporter || echo /usr/bin/prometheus-postgres-exporter)

[ -x "$VITALS" ] || (cd "$REPO" && cargo build --release --bin vitals)
[ -x "$EXPORTER" ] || { echo "prometheus-postgres-exporter is not installed" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

DIR=$(mktemp -d /tmp/vitals-pgdeep-bench.XXXXXX)
AS=()
if [ "$(id -u)" = 0 ]; then chown postgres "$DIR"; AS=(runuser -u postgres --); fi
PORT=$(free_port)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    "${AS[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup EXIT

"${AS[@]}" "$PG_BIN/initdb" -D "$DIR/data" -U postgres --auth=trust --no-sync >/dev/null
cat >>"$DIR/data/postgresql.conf" <<EOF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
max_connections = $((CONNECTIONS + 50))
shared_buffers = 64MB
fsync = off
synchronous_commit = off
full_page_writes = off
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.max = $((STATEMENTS * 2 + 1000))
pg_stat_statements.track_planning = on
EOF
"${AS[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w start >/dev/null
psql() { "${AS[@]}" "$PG_BIN/psql" -h "$DIR" -p "$PORT" -U postgres -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

psql -d postgres -c "CREATE EXTENSION pg_stat_statements;
  CREATE ROLE vitals_mon LOGIN IN ROLE pg_monitor;
  CREATE ROLE exporter_mon LOGIN IN ROLE pg_monitor;
  CREATE ROLE app LOGIN;"
echo "creating $DBS databases, $STATEMENTS statements, $CONNECTIONS connections" >&2
for i in $(seq 1 "$DBS"); do echo "CREATE DATABASE bench_$i;"; done | psql -d postgres >/dev/null
# Distinct statements: a different number of columns over different catalogs.
python3 - "$STATEMENTS" >"$DIR/statements.sql" <<'EOF'
import sys
tables = ["pg_class", "pg_namespace", "pg_type", "pg_proc", "pg_attribute", "pg_index"]
for i in range(int(sys.argv[1])):
    cols = ", ".join(["1"] * (i % 1000 + 1))
    print(f"SELECT {cols} FROM {tables[i // 1000 % len(tables)]} LIMIT 0;")
EOF
psql -d postgres -f "$DIR/statements.sql" >/dev/null
# Some tables with dead tuples and an unused index in the watched database.
psql -d postgres -c "CREATE TABLE t AS SELECT g AS id, g AS v FROM generate_series(1, 100000) g;
  CREATE INDEX t_v ON t (v); DELETE FROM t WHERE id % 10 = 0;"

# Open connections running a cheap statement each per second on average,
# at random (Poisson) times: not all in the same millisecond.
printf 'SELECT 1;\n' >"$DIR/app.sql"
"${AS[@]}" "$PG_BIN/pgbench" -h 127.0.0.1 -p "$PORT" -U app -n -c "$CONNECTIONS" -j 4 \
    -R "$CONNECTIONS" -T $((SECS + WARMUP + 60)) -f "$DIR/app.sql" postgres >"$DIR/pgbench.log" 2>&1 &
PIDS+=($!)
sleep 5

VPORT=$(free_port)
EPORT=$(free_port)
cat >"$DIR/vitals.yaml" <<EOF
listen: 127.0.0.1:$VPORT
${VITALS_INTERVAL:+interval: $VITALS_INTERVAL}
sources:
  host: {enabled: false}
  cgroup: {enabled: false}
  postgres:
    - name: bench
      dsn: "host=127.0.0.1 port=$PORT user=vitals_mon dbname=postgres"
EOF
# Debian's postgres_exporter 0.11.1 has no stat_statements or wraparound
# collector: the same queries as upstream's collectors (v0.15) as custom
# queries, plus its default metrics (pg_stat_database, bgwriter, ...).
cat >"$DIR/queries.yaml" <<'EOF'
pg_stat_statements:
  query: "SELECT pg_get_userbyid(userid) AS user, pg_database.datname, pg_stat_statements.queryid, pg_stat_statements.calls AS calls_total, pg_stat_statements.total_exec_time / 1000.0 AS seconds_total, pg_stat_statements.rows AS rows_total, pg_stat_statements.blk_read_time / 1000.0 AS block_read_seconds_total, pg_stat_statements.blk_write_time / 1000.0 AS block_write_seconds_total FROM pg_stat_statements JOIN pg_database ON pg_database.oid = pg_stat_statements.dbid WHERE total_exec_time > (SELECT percentile_cont(0.1) WITHIN GROUP (ORDER BY total_exec_time) FROM pg_stat_statements) ORDER BY seconds_total DESC LIMIT 100"
  metrics:
    - user: {usage: LABEL, description: role}
    - datname: {usage: LABEL, description: database}
    - queryid: {usage: LABEL, description: query id}
    - calls_total: {usage: COUNTER, description: calls}
    - seconds_total: {usage: COUNTER, description: execution time}
    - rows_total: {usage: COUNTER, description: rows}
    - block_read_seconds_total: {usage: COUNTER, description: block read time}
    - block_write_seconds_total: {usage: COUNTER, description: block write time}
pg_database_wraparound:
  query: "SELECT datname, age(d.datfrozenxid) AS age_datfrozenxid, mxid_age(d.datminmxid) AS age_datminmxid FROM pg_catalog.pg_database d WHERE d.datallowconn"
  metrics:
    - datname: {usage: LABEL, description: database}
    - age_datfrozenxid: {usage: GAUGE, description: age(datfrozenxid)}
    - age_datminmxid: {usage: GAUGE, description: mxid_age(datminmxid)}
EOF
"$VITALS" --config "$DIR/vitals.yaml" >"$DIR/vitals.log" 2>&1 &
PIDS+=($!)
DATA_SOURCE_NAME="postgresql://exporter_mon@127.0.0.1:$PORT/postgres?sslmode=disable" \
    "$EXPORTER" --web.listen-address="127.0.0.1:$EPORT" --extend.query-path="$DIR/queries.yaml" \
    >"$DIR/exporter.log" 2>&1 &
PIDS+=($!)
# Every entry of both agents' roles: role, queryid, plan+exec ms, plan ms,
# calls, start of the text. Run identically before the window (so this
# statement is no newcomer in it) and at both ends; the window is the
# difference.
snapshot() {
    psql -d postgres -F $'\t' -c "SELECT pg_get_userbyid(userid), queryid, total_exec_time + total_plan_time,
        total_plan_time, calls, left(regexp_replace(query, '\s+', ' ', 'g'), 60)
        FROM pg_stat_statements WHERE userid IN ('vitals_mon'::regrole, 'exporter_mon'::regrole)"
}
# Warm-up as in production: the exporter already scraped (Prometheus has
# been at it all along) and the bench's own bookkeeping statement already
# known, so neither is a new statement joining vitals' top list in the
# window.
snapshot >/dev/null
WARM_END=$(( $(date +%s) + WARMUP ))
while [ "$(date +%s)" -lt "$WARM_END" ]; do
    curl -sf "http://127.0.0.1:$EPORT/metrics" >/dev/null || true
    sleep "$(( WARMUP < SCRAPE ? WARMUP : SCRAPE ))"
done
# Both connected; count from here (per-statement totals now, subtracted at
# the end: a reset would also drop the bench statements).
snapshot >"$DIR/t0.tsv"
START=$(date +%s)
SCRAPES=0
while [ $(( $(date +%s) - START )) -lt "$SECS" ]; do
    curl -sf "http://127.0.0.1:$EPORT/metrics" >"$DIR/exporter.prom" || true
    SCRAPES=$((SCRAPES + 1))
    sleep "$SCRAPE"
done
ELAPSED=$(( $(date +%s) - START ))
curl -sf "http://127.0.0.1:$VPORT/metrics" >"$DIR/vitals.prom"
ROUNDS=$(awk '/^vitals_source_success\{source="postgres\/bench"\}/ {print "ok"}' "$DIR/vitals.prom")
[ -n "$ROUNDS" ] || { echo "vitals did not report the postgres source" >&2; cat "$DIR/vitals.log" >&2; exit 1; }

snapshot >"$DIR/t1.tsv"
# Per role: server ms and statements per minute of the window; the
# window's costliest statements on stderr.
read -r V_MS V_CALLS E_MS E_CALLS < <(python3 - "$DIR/t0.tsv" "$DIR/t1.tsv" "$ELAPSED" <<'PY'
import sys
def load(path):
    rows = {}
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) == 6:
            ms, plan, calls = float(f[2]), float(f[3]), float(f[4])
            old = rows.get((f[0], f[1]), (0, 0, 0, f[5]))
            rows[(f[0], f[1])] = (old[0] + ms, old[1] + plan, old[2] + calls, f[5])
    return rows
t0, t1, secs = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3])
diff = []
for key, (ms, plan, calls, text) in t1.items():
    b = t0.get(key, (0, 0, 0, text))
    diff.append((key[0], ms - b[0], plan - b[1], calls - b[2], text))
print("costliest statements in the window (ms, of it planning, calls, role, statement):", file=sys.stderr)
for role, ms, plan, calls, text in sorted(diff, key=lambda d: -d[1])[:14]:
    print(f"{ms:9.1f} {plan:7.1f} {calls:5.0f}  {role:13} {text}", file=sys.stderr)
out = []
for role in ("vitals_mon", "exporter_mon"):
    mine = [d for d in diff if d[0] == role]
    out += [f"{sum(d[1] for d in mine) * 60 / secs:.1f}", f"{sum(d[3] for d in mine) * 60 / secs:.1f}"]
print(" ".join(out))
PY
)
V_SERIES=$(grep -c '^vitals_pg_' "$DIR/vitals.prom" || true)
E_SERIES=$(grep -c '^pg_' "$DIR/exporter.prom" || true)
TRACKED=$(psql -d postgres -c "SELECT count(*) FROM pg_stat_statements")
ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'{a / b:.3f}' if b else 'n/a')" "$1" "$2"; }

cat <<EOF

PostgreSQL 15, $DBS databases, $STATEMENTS distinct bench statements ($TRACKED in pg_stat_statements at the end), $CONNECTIONS open connections, ${ELAPSED}s window after ${WARMUP}s of warm-up.
vitals every ${VITALS_INTERVAL:-5s} (statements every 30 s, catalog every 60 s); postgres_exporter scraped every ${SCRAPE}s ($SCRAPES scrapes) with its default metrics plus upstream's stat_statements and wraparound queries.

| | server time per minute (plan + exec, ms) | statements per minute | series |
|---|---|---|---|
| vitals | $V_MS | $V_CALLS | $V_SERIES |
| postgres_exporter | $E_MS | $E_CALLS | $E_SERIES |
| vitals ÷ exporter | $(ratio "$V_MS" "$E_MS") | $(ratio "$V_CALLS" "$E_CALLS") | $(ratio "$V_SERIES" "$E_SERIES") |
EOF

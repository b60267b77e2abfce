#!/usr/bin/env bash
# vitals scraping an instrumented application with 2,000 series, side by
# side with Prometheus' own scrape of the same application.
#
#   bash bench/app_metrics.sh
#
# Needs the Debian packages prometheus, python3-prometheus-client and curl.
# Builds vitals (release) unless BENCH_SKIP_BUILD=1, then in a temporary
# directory on free loopback ports starts the Python app of the tests
# (tests/support/metrics_app.py --series 2000), ONE vitals with the app
# source (export: true, so its /metrics is the merged exposition) and ONE
# Prometheus scraping the app directly, both every BENCH_INTERVAL_SECS.
# After a warm-up it measures, over BENCH_IDLE_SECS without any scrape of
# vitals, each one's CPU per round (from /proc/PID/stat) and RSS; each one's
# own figure of its scrape of the app (vitals_app_scrape_duration_seconds,
# Prometheus' scrape_duration_seconds); then BENCH_SEQ sequential GETs of
# vitals' merged /metrics against the same GETs of the app's own /metrics
# (what Prometheus fetches), and prints one Markdown table. Everything is
# stopped on exit.
#
# Knobs: BENCH_SERIES (2000), BENCH_INTERVAL_SECS (5), BENCH_IDLE_SECS (60),
# BENCH_SEQ (200), BENCH_SKIP_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
SERIES=${BENCH_SERIES:-2000}
INTERVAL=${BENCH_INTERVAL_SECS:-5}
IDLE=${BENCH_IDLE_SECS:-60}
SEQ=${BENCH_SEQ:-200}

say() { printf '[bench] %s\n' "$*" >&2; }
for tool in prometheus curl /usr/bin/python3; do
    command -v "$tool" >/dev/null || { say "missing $tool (Debian packages prometheus, curl, python3)"; exit 1; }
done
/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null \
    || { say "missing python3-prometheus-client"; exit 1; }

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    say "building vitals (release)"
    cargo build --release --quiet --bin vitals
fi
VITALS=$REPO/target/release/vitals

TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url
    for _ in $(seq 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.2; done
    say "no answer from $1"; exit 1
}

# The app, on a port it picks and prints.
/usr/bin/python3 "$REPO/tests/support/metrics_app.py" --series "$SERIES" >"$TMP/app.out" 2>"$TMP/app.log" &
PIDS+=($!); APP_PID=$!
for _ in $(seq 100); do grep -q '^PORT ' "$TMP/app.out" 2>/dev/null && break; sleep 0.1; done
APP="127.0.0.1:$(awk '/^PORT/ {print $2}' "$TMP/app.out")"
wait_http "http://$APP/metrics"

VITALS_PORT=$(free_port)
cat >"$TMP/vitals.yaml" <<EOF
listen: 127.0.0.1:$VITALS_PORT
interval: ${INTERVAL}s
default_checks: false
sources:
  app_metrics:
    - {name: web, url: 'http://$APP/metrics', export: true}
EOF
"$VITALS" --config "$TMP/vitals.yaml" 2>"$TMP/vitals.log" &
PIDS+=($!); VITALS_PID=$!

PROM_PORT=$(free_port)
cat >"$TMP/prometheus.yml" <<EOF
global: {scrape_interval: ${INTERVAL}s, scrape_timeout: ${INTERVAL}s}
scrape_configs:
  - job_name: app
    static_configs: [{targets: ['$APP']}]
EOF
prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/prom" \
    --web.listen-address="127.0.0.1:$PROM_PORT" 2>"$TMP/prometheus.log" &
PIDS+=($!); PROM_PID=$!
wait_http "http://127.0.0.1:$VITALS_PORT/health/live"
wait_http "http://127.0.0.1:$PROM_PORT/-/ready"

say "warming up for $((3 * INTERVAL)) s"
sleep $((3 * INTERVAL))

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
HZ=$(getconf CLK_TCK)

say "idle window of $IDLE s (no scrape of vitals)"
v0=$(cpu_ticks "$VITALS_PID"); p0=$(cpu_ticks "$PROM_PID")
sleep "$IDLE"
v1=$(cpu_ticks "$VITALS_PID"); p1=$(cpu_ticks "$PROM_PID")
ROUNDS=$(awk -v i="$IDLE" -v n="$INTERVAL" 'BEGIN {printf "%d", i / n}')
V_CPU=$(awk -v a="$v0" -v b="$v1" -v hz="$HZ" -v r="$ROUNDS" 'BEGIN {printf "%.2f", (b - a) / hz / r * 1000}')
P_CPU=$(awk -v a="$p0" -v b="$p1" -v hz="$HZ" -v r="$ROUNDS" 'BEGIN {printf "%.2f", (b - a) / hz / r * 1000}')
V_RSS=$(rss_kib "$VITALS_PID"); P_RSS=$(rss_kib "$PROM_PID")

metric() { # url name -> first value
    curl -fsS "$1" | awk -v n="$2" '$1 ~ "^"n"([{]|$)" {print $2; exit}'
}
V_SCRAPE=$(metric "http://127.0.0.1:$VITALS_PORT/metrics" vitals_app_scrape_duration_seconds)
V_SERIES=$(metric "http://127.0.0.1:$VITALS_PORT/metrics" vitals_app_series)
P_SCRAPE=$(curl -fsS "http://127.0.0.1:$PROM_PORT/api/v1/query?query=scrape_duration_seconds%7Bjob%3D%22app%22%7D" \
    | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["result"][0]["value"][1])')
P_SAMPLES=$(curl -fsS "http://127.0.0.1:$PROM_PORT/api/v1/query?query=scrape_samples_scraped%7Bjob%3D%22app%22%7D" \
    | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["result"][0]["value"][1])')

latency() { # url -> mean and p99 of SEQ sequential GETs, in ms
    for _ in $(seq "$SEQ"); do
        curl -sS -o /dev/null -w '%{time_total}\n' -H 'Accept-Encoding: gzip' "$1"
    done | sort -n | awk '{a[NR]=$1; s+=$1} END {printf "%.2f %.2f\n", s / NR * 1000, a[int(NR * 0.99)] * 1000}'
}
say "$SEQ sequential GETs of each /metrics"
read -r V_MEAN V_P99 < <(latency "http://127.0.0.1:$VITALS_PORT/metrics")
read -r A_MEAN A_P99 < <(latency "http://$APP/metrics")
V_BYTES=$(curl -fsS "http://127.0.0.1:$VITALS_PORT/metrics" | wc -c)
A_BYTES=$(curl -fsS "http://$APP/metrics" | wc -c)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "–" }'; }
cat <<EOF

App with $SERIES extra series ($V_SERIES samples parsed by vitals, $P_SAMPLES scraped by Prometheus), interval ${INTERVAL}s, $(nproc) cores.

| figure | vitals | Prometheus / the app | ratio |
|---|---|---|---|
| CPU per round, ms (idle window of ${IDLE}s, $ROUNDS rounds; Prometheus: per scrape, TSDB included) | $V_CPU | $P_CPU | $(ratio "$V_CPU" "$P_CPU") |
| RSS, MiB | $(awk -v k="$V_RSS" 'BEGIN {printf "%.1f", k / 1024}') | $(awk -v k="$P_RSS" 'BEGIN {printf "%.1f", k / 1024}') | $(ratio "$V_RSS" "$P_RSS") |
| its own scrape of the app, ms (last round) | $(awk -v s="$V_SCRAPE" 'BEGIN {printf "%.2f", s * 1000}') | $(awk -v s="$P_SCRAPE" 'BEGIN {printf "%.2f", s * 1000}') | $(ratio "$V_SCRAPE" "$P_SCRAPE") |
| GET /metrics, mean ms (vitals' merged exposition vs the app's own), $SEQ sequential, gzip | $V_MEAN | $A_MEAN | $(ratio "$V_MEAN" "$A_MEAN") |
| GET /metrics, p99 ms | $V_P99 | $A_P99 | $(ratio "$V_P99" "$A_P99") |
| /metrics size, bytes (uncompressed) | $V_BYTES | $A_BYTES | $(ratio "$V_BYTES" "$A_BYTES") |

Command: BENCH_SERIES=$SERIES BENCH_INTERVAL_SECS=$INTERVAL BENCH_IDLE_SECS=$IDLE BENCH_SEQ=$SEQ bash bench/app_metrics.sh
EOF

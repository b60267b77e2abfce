#!/usr/bin/env bash
# What metric_relabel_configs cost: vitals scraping and pushing a 20,000-series
# application without rules and with 10 rules, side by side with vmagent
# scraping and pushing the same application with the same 10 rules.
#
#   bash bench/relabel.sh
#
# Needs the Debian packages victoria-metrics (vmagent), curl and python3.
# Builds vitals (release) unless BENCH_SKIP_BUILD=1. In a temporary directory,
# on free loopback ports: a static app (200 counter families x 100 series, 4
# labels each), a remote-write sink that accepts every request (204), and
# three agents scraping the app every BENCH_INTERVAL_SECS and pushing to the
# sink: vitals without rules, vitals with the rules, vmagent with the rules.
# After a warm-up it reads each one's CPU (utime + stime, /proc/PID/stat)
# over BENCH_IDLE_SECS and prints CPU per round and RSS as a Markdown table.
#
# The rules use the actions vmagent 1.79 (Debian) knows: drop, keep,
# replace, hashmod, labelmap, labeldrop, labelkeep.
#
# Knobs: BENCH_INTERVAL_SECS (2), BENCH_IDLE_SECS (60), BENCH_SKIP_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
INTERVAL=${BENCH_INTERVAL_SECS:-2}
IDLE=${BENCH_IDLE_SECS:-60}

say() { printf '[bench] %s\n' "$*" >&2; }
for tool in vmagent curl /usr/bin/python3; do
    command -v "$tool" >/dev/null || { say "missing $tool (Debian packages victoria-metrics, curl, python3)"; exit 1; }
done
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

# The app: one static exposition.
mkdir -p "$TMP/app"
/usr/bin/python3 - "$TMP/app/metrics" <<'EOF'
import sys
out = []
for f in range(200):
    prefix = ["jvm", "http", "db", "cache"][f % 4]
    name = f"{prefix}_family_{f}_total"
    out.append(f"# HELP {name} A counter.\n# TYPE {name} counter\n")
    for s in range(100):
        status = [200, 201, 404, 500][s % 4]
        out.append(f'{name}{{handler="/api/v{s % 7}/items",status="{status}",pod="web-{s % 13}",tag_team="Team{s % 3}"}} {s * 17 + f}\n')
open(sys.argv[1], "w").write("".join(out))
EOF
APP_PORT=$(free_port)
(cd "$TMP/app" && exec /usr/bin/python3 -m http.server "$APP_PORT" --bind 127.0.0.1 >/dev/null 2>&1) &
PIDS+=($!)
APP="127.0.0.1:$APP_PORT"
wait_http "http://$APP/metrics"

# The remote-write sink.
SINK_PORT=$(free_port)
/usr/bin/python3 - "$SINK_PORT" >/dev/null 2>&1 <<'EOF' &
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
EOF
PIDS+=($!)
SINK="http://127.0.0.1:$SINK_PORT/api/v1/write"
wait_http "http://127.0.0.1:$SINK_PORT/"

RULES=$(cat <<'EOF'
- {source_labels: [__name__], regex: 'jvm_family_1[0-9]+_total', action: drop}
- {source_labels: [status], regex: '(2..|5..)?', action: keep}
- {source_labels: [handler], regex: '/api/(v[0-9]+)/.*', target_label: api_version, replacement: '$1'}
- {source_labels: [pod], modulus: 8, target_label: shard, action: hashmod}
- {regex: 'tag_(.+)', replacement: 'label_${1}', action: labelmap}
- {regex: 'tag_.*', action: labeldrop}
- {source_labels: [label_team], regex: 'Team(.*)', target_label: team, replacement: 't$1'}
- {regex: 'label_team', action: labeldrop}
- {source_labels: [__name__, status], regex: 'db_.*;500', action: drop}
- {regex: '__name__|job|instance|app|handler|status|pod|shard|api_version|team', action: labelkeep}
EOF
)
indent() { sed "s/^/$(printf '%*s' "$1" '')/"; }

start_vitals() { # name, with rules (0/1) -> pid in VPID
    local port; port=$(free_port)
    {
        printf 'listen: 127.0.0.1:%s\ninterval: %ss\ndefault_checks: false\n' "$port" "$INTERVAL"
        printf 'sources:\n  host: {enabled: false}\n  cgroup: {enabled: false}\n  app_metrics:\n'
        printf '    - name: web\n      url: "http://%s/metrics"\n      export: true\n' "$APP"
        if [[ $2 == 1 ]]; then
            printf '      metric_relabel_configs:\n'
            printf '%s\n' "$RULES" | indent 8
        fi
        printf 'remote_write:\n  - {url: "%s"}\n' "$SINK"
    } >"$TMP/$1.yaml"
    "$VITALS" --config "$TMP/$1.yaml" 2>"$TMP/$1.log" &
    VPID=$!
    PIDS+=("$VPID")
    wait_http "http://127.0.0.1:$port/health/live"
}
start_vitals plain 0; PLAIN_PID=$VPID
start_vitals rules 1; RULES_PID=$VPID

VM_PORT=$(free_port)
{
    printf 'global: {scrape_interval: %ss, scrape_timeout: %ss}\n' "$INTERVAL" "$INTERVAL"
    printf 'scrape_configs:\n  - job_name: web\n    static_configs: [{targets: ["%s"]}]\n    metric_relabel_configs:\n' "$APP"
    printf '%s\n' "$RULES" | indent 6
} >"$TMP/vmagent.yml"
vmagent -promscrape.config="$TMP/vmagent.yml" -remoteWrite.url="$SINK" \
    -remoteWrite.tmpDataPath="$TMP/vmagent-data" -httpListenAddr="127.0.0.1:$VM_PORT" \
    -loggerLevel=ERROR >"$TMP/vmagent.log" 2>&1 &
VM_PID=$!
PIDS+=("$VM_PID")
wait_http "http://127.0.0.1:$VM_PORT/health"

say "warming up for $((5 * INTERVAL)) s"
sleep $((5 * INTERVAL))
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
HZ=$(getconf CLK_TCK)
say "measuring for $IDLE s"
a0=$(cpu_ticks "$PLAIN_PID"); b0=$(cpu_ticks "$RULES_PID"); c0=$(cpu_ticks "$VM_PID")
sleep "$IDLE"
a1=$(cpu_ticks "$PLAIN_PID"); b1=$(cpu_ticks "$RULES_PID"); c1=$(cpu_ticks "$VM_PID")
ROUNDS=$(awk -v i="$IDLE" -v n="$INTERVAL" 'BEGIN {printf "%d", i / n}')
per_round() { awk -v a="$1" -v b="$2" -v hz="$HZ" -v r="$ROUNDS" 'BEGIN {printf "%.2f", (b - a) / hz / r * 1000}'; }
A=$(per_round "$a0" "$a1"); B=$(per_round "$b0" "$b1"); C=$(per_round "$c0" "$c1")
mib() { awk -v k="$(rss_kib "$1")" 'BEGIN {printf "%.1f", k / 1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "–" }'; }
KEPT=$(curl -fsS "http://127.0.0.1:$(awk '/^listen/ {split($2, p, ":"); print p[2]}' "$TMP/rules.yaml")/metrics" | grep -c '^[a-z_]*_family_' || true)

cat <<EOF

App: 20,000 series (200 counter families x 100 series), scraped and pushed every ${INTERVAL}s by each agent; ${KEPT} series left after the 10 rules; $(nproc) cores; ${IDLE}s window, $ROUNDS rounds.

| agent | CPU per round, ms | RSS, MiB |
|---|---|---|
| vitals, no rules | $A | $(mib "$PLAIN_PID") |
| vitals, 10 rules | $B | $(mib "$RULES_PID") |
| vmagent 1.79, 10 rules | $C | $(mib "$VM_PID") |

vitals with rules / without: $(ratio "$B" "$A"); vitals with rules / vmagent with rules: $(ratio "$B" "$C").

Command: BENCH_INTERVAL_SECS=$INTERVAL BENCH_IDLE_SECS=$IDLE bash bench/relabel.sh
EOF

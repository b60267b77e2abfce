#!/usr/bin/env bash
# Overload: vitals and node_exporter side by side under wrk floods of 0.5×,
# 1×, 4× and 20× vitals' default web.max_connections (256), plain HTTP and
# TLS + bcrypt basic auth, both at their default settings (node_exporter
# with the same web config file through --web.config.file). During every
# run a Prometheus-style scraper (curl, one connection per scrape, 10 s
# timeout, from 127.0.0.2) scrapes once a second. Then the table of the
# issue that started this ("wrk -t2 -d8s" at 200 and 1000 connections
# against vitals alone) again.
#
#   bash bench/overload.sh
#
# Knobs: BENCH_SECS (seconds per wrk run, 8), BENCH_SKIP_BUILD=1 (use
# target/release/vitals as built). Needs wrk, curl, openssl and
# prometheus-node-exporter (Debian packages). Loopback only; about three
# minutes; everything started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
SECS=${BENCH_SECS:-8}
LIMIT=256 # vitals' default web.max_connections
say() { printf '[overload] %s\n' "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}
for tool in wrk curl openssl prometheus-node-exporter; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install wrk curl openssl prometheus-node-exporter)"
done
if [[ -z ${BENCH_SKIP_BUILD:-} ]]; then
    say "building vitals (release)"
    cargo build --release --quiet --bin vitals
fi
VITALS=${BENCH_VITALS:-$REPO/target/release/vitals}
# 20× the limit is 5120 connections for wrk alone.
ulimit -n "$(ulimit -Hn)"
((20 * LIMIT + 64 < $(ulimit -n))) || die "open files limit $(ulimit -n) too low for $((20 * LIMIT)) connections"

TMP=$(mktemp -d /tmp/vitals-overload-XXXXXX)
PIDS=()
cleanup() {
    local rc=$?
    set +e
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # URL CURL_ARGS...
    for _ in $(seq 1 100); do
        curl -s -o /dev/null -k "${@:2}" "$1" && return 0
        sleep 0.1
    done
    die "nothing answers at $1"
}

# A throwaway certificate and the bench user's bcrypt hash (cost 10, what
# `htpasswd -nBC 10` makes) of the password below.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$TMP/s.key" -out "$TMP/s.crt" 2>/dev/null
PASSWORD=bench-password
HASH='$2b$10$1Xw1aicK5yFklhwgLRUfout4ehURIX2WUhkMsMiDNLRO4RhpmsrF.'
AUTH="Authorization: Basic $(printf 'prometheus:%s' "$PASSWORD" | base64)"
cat >"$TMP/web-tls-auth.yml" <<EOF
tls_server_config: {cert_file: $TMP/s.crt, key_file: $TMP/s.key}
basic_auth_users:
  prometheus: '$HASH'
EOF
cat >"$TMP/web-tls.yml" <<EOF
tls_server_config: {cert_file: $TMP/s.crt, key_file: $TMP/s.key}
EOF
cat >"$TMP/web-auth.yml" <<EOF
basic_auth_users:
  prometheus: '$HASH'
EOF
# vitals' defaults except what a benchmark must pin: the sources (host
# and own cgroup, as `vitals` runs with no file) and the port.
cat >"$TMP/vitals.yaml" <<EOF
sources:
  host: {enabled: true}
  cgroup: {enabled: true, target: self}
EOF

START_PID=
start_vitals() { # WEB_CONFIG|-
    local port args=(--config "$TMP/vitals.yaml")
    port=$(free_port)
    [[ $1 != - ]] && args+=(--web.config.file "$1")
    "$VITALS" "${args[@]}" --listen "127.0.0.1:$port" >"$TMP/vitals.log" 2>&1 &
    START_PID=$!
    PIDS+=("$START_PID")
    START_PORT=$port
}
start_node() { # WEB_CONFIG|-
    local port args=()
    port=$(free_port)
    [[ $1 != - ]] && args+=(--web.config.file="$1")
    prometheus-node-exporter --web.listen-address="127.0.0.1:$port" "${args[@]}" >"$TMP/node.log" 2>&1 &
    START_PID=$!
    PIDS+=("$START_PID")
    START_PORT=$port
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

# Runs wrk with N connections for SECS against URL while a scraper scrapes
# once a second and RSS is sampled; prints one table row.
# ARGS: LABEL EXPORTER PID URL CONNECTIONS AUTH(0|1)
row() {
    local label=$1 exporter=$2 pid=$3 url=$4 conns=$5 auth=$6
    local hdr=() curl_auth=()
    if ((auth)); then
        hdr=(-H "$AUTH")
        curl_auth=(-u "prometheus:$PASSWORD")
    fi
    # Warm: the credential check (bcrypt) done once, as under Prometheus.
    curl -s -k -o /dev/null "${curl_auth[@]}" "$url"
    sleep 1
    local before peak=0 r
    before=$(rss_mib "$pid")
    wrk -t2 -c"$conns" -d"${SECS}s" --timeout 10s "${hdr[@]}" "$url" >"$TMP/wrk.out" 2>&1 &
    local wrk_pid=$!
    # The scraper: one connection per scrape, 10 s timeout, another address.
    (
        sleep 1
        ok=0 n=0
        end=$((SECONDS + SECS - 1))
        while ((SECONDS < end)); do
            code=$(curl -s -k -o /dev/null -w '%{http_code}' --max-time 10 --interface 127.0.0.2 \
                "${curl_auth[@]}" "$url" || true)
            n=$((n + 1))
            [[ $code == 200 ]] && ok=$((ok + 1))
            sleep 1
        done
        echo "$ok/$n" >"$TMP/scraper.out"
    ) &
    local scraper_pid=$!
    while kill -0 "$wrk_pid" 2>/dev/null; do
        r=$(rss_mib "$pid")
        awk -v a="$r" -v b="$peak" 'BEGIN {exit !(a > b)}' && peak=$r
        sleep 0.2
    done
    wait "$wrk_pid" || true
    wait "$scraper_pid" || true
    sleep 2
    local after
    after=$(rss_mib "$pid")
    awk -v label="$label" -v ex="$exporter" -v conns="$conns" -v secs="$SECS" \
        -v before="$before" -v peak="$peak" -v after="$after" -v scraper="$(cat "$TMP/scraper.out")" '
        /requests in/ {reqs = $1}
        /Requests\/sec/ {rps = $2}
        /Non-2xx/ {non2xx = $NF}
        /Socket errors/ {gsub(/,/, ""); sock = sprintf("c%s r%s w%s t%s", $4, $6, $8, $10)}
        END {
            if (sock == "") sock = "0"
            printf "| %s | %s | %d | %s | %.0f | %d | %s | %s | %s / %s / %s |\n",
                label, ex, conns, reqs + 0, rps, non2xx + 0, sock, scraper, before, peak, after
        }' "$TMP/wrk.out"
}

cat <<EOF

## Overload, $(date -u '+%Y-%m-%d %H:%M UTC')

- command: \`bash bench/overload.sh\` (BENCH_SECS=$SECS): \`wrk -t2 -c<connections> -d${SECS}s --timeout 10s\` against \`/metrics\`, both exporters at their defaults (vitals web.max_connections $LIMIT, node_exporter --web.max-requests 40)
- machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), load average at start $(cut -d' ' -f1-3 /proc/loadavg)
- vitals $("$VITALS" --version | sed 's/^vitals //') (release build), node_exporter $(dpkg-query -W -f='${Version}' prometheus-node-exporter 2>/dev/null || echo '?')
- scraper: curl, one connection per scrape, 10 s timeout, from 127.0.0.2, once a second during each run: 200s / scrapes
- socket errors: wrk's connect / read / write / timeout counts

| web config | exporter | connections | requests | req/s | non-2xx | socket errors | scraper 200s | RSS MiB before / peak / after |
|---|---|---:|---:|---:|---:|---|---:|---|
EOF
for mode in plain tls-auth; do
    case $mode in
        plain) web=- scheme=http auth=0 label=plain ;;
        tls-auth) web=$TMP/web-tls-auth.yml scheme=https auth=1 label="TLS + basic auth" ;;
    esac
    for exporter in vitals node_exporter; do
        if [[ $exporter == vitals ]]; then start_vitals "$web"; else start_node "$web"; fi
        pid=$START_PID
        url="$scheme://127.0.0.1:$START_PORT/metrics"
        wait_http "$url" -u "prometheus:$PASSWORD"
        for conns in $((LIMIT / 2)) $LIMIT $((4 * LIMIT)) $((20 * LIMIT)); do
            row "$label" "$exporter" "$pid" "$url" "$conns" "$auth"
        done
        stop "$pid"
    done
done

cat <<EOF

### The issue's table again: vitals alone, \`wrk -t2 -d${SECS}s\`

| web config | exporter | connections | requests | req/s | non-2xx | socket errors | scraper 200s | RSS MiB before / peak / after |
|---|---|---:|---:|---:|---:|---|---:|---|
EOF
for spec in "tls-auth 200" "tls-auth 1000" "tls 1000" "auth 1000" "auth 200"; do
    read -r mode conns <<<"$spec"
    case $mode in
        tls-auth) web=$TMP/web-tls-auth.yml scheme=https auth=1 label="TLS + bcrypt basic auth" ;;
        tls) web=$TMP/web-tls.yml scheme=https auth=0 label="TLS only" ;;
        auth) web=$TMP/web-auth.yml scheme=http auth=1 label="basic auth, plain HTTP" ;;
    esac
    start_vitals "$web"
    pid=$START_PID
    url="$scheme://127.0.0.1:$START_PORT/metrics"
    wait_http "$url" -u "prometheus:$PASSWORD"
    row "$label" vitals "$pid" "$url" "$conns" "$auth"
    stop "$pid"
done
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

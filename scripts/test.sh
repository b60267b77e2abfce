#!/usr/bin/env bash
# Runs the whole vitals test suite on a Debian 12 machine with the Rust
# toolchain, as root. Installs the Debian packages the tests use when they
# are missing; starts nothing that outlives the run (the tests start and stop
# their own PostgreSQL, PgBouncer, Prometheus, Alertmanager and
# VictoriaMetrics on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."

# package -> a file it installs
declare -A needs=(
  [prometheus]=/usr/bin/promtool
  [victoria-metrics]=/usr/bin/victoria-metrics
  [postgresql-15]=/usr/lib/postgresql/15/bin/postgres
  [postgresql-client-15]=/usr/bin/psql
  [pgbouncer]=/usr/sbin/pgbouncer
  [prometheus-alertmanager]=/usr/bin/amtool
  [systemd]=/usr/bin/systemd-analyze
  [chromium]=/usr/bin/chromium
  [util-linux]=/usr/bin/setpriv
  [redis-server]=/usr/bin/redis-server
  [redis-tools]=/usr/bin/redis-cli
  [python3-prometheus-client]=/usr/lib/python3/dist-packages/prometheus_client/__init__.py
  # tests/cgroup_v2_kernel.rs: a cgroup v2 VM under software emulation,
  # its init a static busybox, its helper built with gcc -static.
  [qemu-system-x86]=/usr/bin/qemu-system-x86_64
  [busybox-static]=/bin/busybox
  [libc6-dev]=/usr/lib/x86_64-linux-gnu/libc.a
)
missing=()
for pkg in "${!needs[@]}"; do
  [ -e "${needs[$pkg]}" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-install-recommends: only what the tests use.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Packages may start their own services; the tests run their own instances.
  for svc in postgresql pgbouncer prometheus prometheus-alertmanager redis-server victoria-metrics; do
    service "$svc" stop >/dev/null 2>&1 || true
  done
fi

# kubernetes-validate (PyPI) checks the Kubernetes manifests offline; it
# goes into a virtualenv under target/ unless it is on PATH already.
if ! command -v kubernetes-validate >/dev/null; then
  venv=target/tools-venv
  if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    echo "== installing kubernetes-validate into $venv"
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    mkdir -p target
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate
  fi
  export PATH="$PWD/$venv/bin:$PATH"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
mkdir -p target
cargo test --all-targets --no-fail-fast "$@" 2>&1 | tee target/test-output.log
# One closing line over every test binary (criterion's test-mode output
# comes last otherwise).
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' target/test-output.log

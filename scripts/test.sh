#!/usr/bin/env bash
# Runs the whole vitals test suite on a Debian 12 machine with the Rust
# toolchain, as root. Installs the Debian packages the tests use when they
# are missing; starts nothing that outlives the run (the tests start and stop
# their own PostgreSQL, PgBouncer, Prometheus and Alertmanager on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."

# package -> a file it installs
declare -A needs=(
  [prometheus]=/usr/bin/promtool
  [postgresql-15]=/usr/lib/postgresql/15/bin/postgres
  [postgresql-client-15]=/usr/bin/psql
  [pgbouncer]=/usr/sbin/pgbouncer
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
  for svc in postgresql pgbouncer prometheus; do
    service "$svc" stop >/dev/null 2>&1 || true
  done
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --all-targets --no-fail-fast "$@"

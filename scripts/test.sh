#!/usr/bin/env bash
# The one test command: installs what the suite needs on a fresh Debian
# machine (only what is missing), then runs formatting, lint and all tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package: dig and curl are the outside clients the tests
# compare against, knotd and unbound the real servers of the interop tests,
# cmake builds the vendored c-ares of the benchmark harness, ip makes the
# network namespaces of the root-only tests, redis-server holds the fleet
# tests' frontier.
need_apt=()
for pair in dig:bind9-dnsutils ip:iproute2 curl:curl cmake:cmake knotd:knot unbound:unbound redis-server:redis-server; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_apt+=("${pair#*:}")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing: ${need_apt[*]} (run as root, or: sudo apt-get install ${need_apt[*]})" >&2
    exit 1
  fi
  echo "== installing ${need_apt[*]}"
  apt-get update -qq
  # The tests start their own Knot, Unbound and Redis; keep the packages' services
  # from starting (and taking port 53) as they install.
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "== installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== doc tests"
cargo test --workspace --doc --locked
echo "== tests"
cargo nextest run --workspace --locked --no-fail-fast "$@"

#!/usr/bin/env bash
# The one test command: installs what the suite needs on a fresh Debian
# machine (only what is missing), then runs formatting, lint and all tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package: dig, kdig (DoT and DoH) and curl are the outside
# clients the tests compare against, knotd and unbound the real servers of
# the interop tests, cmake builds the vendored c-ares of the benchmark
# harness, ip makes the network namespaces of the root-only tests,
# redis-server holds the fleet tests' frontier.
need_apt=()
for pair in dig:bind9-dnsutils kdig:knot-dnsutils ip:iproute2 curl:curl cmake:cmake knotd:knot unbound:unbound redis-server:redis-server python3:python3; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_apt+=("${pair#*:}")
done
# The Python tests' venv (scripts/pyenv.sh) needs venv and pip (python3-venv).
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  need_apt+=(python3-venv)
fi
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

echo "== python test env (scripts/requirements-test.txt: warcio reads the WARC output back)"
bash scripts/pyenv.sh >/dev/null

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== doc tests"
cargo test --workspace --doc --locked
echo "== tests"
cargo nextest run --workspace --locked --no-fail-fast "$@"
# Tests that need root (raw sockets, network namespaces, port 53) are
# `#[ignore = "needs root: ..."]`: the step above shows them as skipped, this
# one runs them, as root only. The fuzz corpus regenerator is ignored for
# another reason (it rewrites fuzz/corpus; `scripts/fuzz.sh seed` runs it),
# and so are fleet mode's full-size run and benchmark (minutes; BENCHMARKS.md, Fleet).
echo "== root-only tests"
if [ "$(id -u)" -eq 0 ]; then
  cargo nextest run --workspace --locked --no-fail-fast --run-ignored only \
    -E 'not test(=regenerate_seed_corpus) and not test(=full_size_30000_urls_3000_hosts) and not test(=fleet_benchmark)' "$@"
else
  echo "skipped: not root, so the tests marked #[ignore = \"needs root: ...\"] did not run"
fi

# Fleet mode at the issue's full size (30,000 URLs over 3,000 hosts, three
# workers, one SIGKILLed): about 2.5 minutes on 2 cores, alone so that
# nothing else competes for the cores.
echo "== fleet at full size"
cargo nextest run -p crawldns-cli --test fleet_crawl --locked --no-fail-fast --run-ignored only \
  -E 'test(=full_size_30000_urls_3000_hosts)' "$@"

# The Python package (python/): its extension crate is not a workspace
# member (maturin builds it as an extension module), so it is linted here;
# then the wheel is built from the tree into the venv of scripts/pyenv.sh
# and pytest runs against `crawldns testbed` processes.
echo "== python: cargo fmt, clippy"
venv=$(scripts/pyenv.sh)
export PYO3_PYTHON="$venv/bin/python" CARGO_TARGET_DIR="$PWD/target"
# python/Cargo.lock is its own; without --locked it follows a change of
# crawldns's dependencies (keeping every version it already pins).
(cd python && cargo fmt -- --check && cargo clippy --all-targets -- -D warnings)
echo "== python: wheel"
rm -rf target/wheels
"$venv/bin/maturin" build -m python/Cargo.toml -i "$venv/bin/python" -o target/wheels
"$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps target/wheels/crawldns-*.whl
cargo build -p crawldns-cli --locked
echo "== python: pytest"
CRAWLDNS_BIN="$PWD/target/debug/crawldns" "$venv/bin/python" -m pytest -q python/tests

#!/usr/bin/env bash
# Soak test (not part of the default test run): a million lookups with
# cache hits, misses, expiries, evictions, 10% query loss on one server and
# SERVFAIL bursts on the other; open fds and RSS are sampled and must stay
# flat. Prints a markdown table and first/last/max figures.
#
#   scripts/soak.sh                 # 1,000,000 lookups at 10,000/s (~100 s), at most 900 s
#   scripts/soak.sh --rate 0        # as fast as they complete (~7 s on 2 cores)
#   scripts/soak.sh --lookups 200000 --max-seconds 120 --sample-every 20000
#   scripts/soak.sh --bulk          # the resolver in bulk mode (every query batched)
#   scripts/soak.sh --unbatched     # batching off (one send per query)
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release --locked -p crawldns --example soak -- "$@"

#!/usr/bin/env bash
# Fuzzes crawldns's answer decoding and the path from answer to cache.
#
#   scripts/fuzz.sh                      every target, 600 s each
#   scripts/fuzz.sh answer_decode 3600   one target for an hour
#   scripts/fuzz.sh all 60               every target, 60 s each
#   scripts/fuzz.sh seed                 regenerate the committed seed corpus
#   scripts/fuzz.sh list                 the targets
#
# Targets (fuzz/fuzz_targets/, logic in fuzz/src/lib.rs):
#   answer_decode    bytes -> wire::judge -> answer::read, with invariants
#   answer_to_cache  answers -> what the resolver stores -> cache::Cache
#
# The fuzzer reads the committed seeds in fuzz/corpus/<target>/ and writes
# what it discovers to fuzz/work/<target>/ (not committed). A crash is saved
# in fuzz/artifacts/<target>/; minimize it with
#   cargo +nightly fuzz tmin <target> <artifact>
# and copy the minimized input to fuzz/regressions/<target>/, where
# `cargo test -p crawldns --test fuzz_corpus` replays it on every CI run.
#
# Needs cargo-fuzz (installed here if missing) and a nightly toolchain for
# -Zsanitizer; without nightly, RUSTC_BOOTSTRAP=1 lets the stable compiler
# take the nightly flags.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(answer_decode answer_to_cache)
what="${1:-all}"
seconds="${2:-600}"

if [ "$what" = list ]; then
  printf '%s\n' "${targets[@]}"
  exit 0
fi

if [ "$what" = seed ]; then
  # Testbed answers and hand-made hostile packets...
  cargo test -p crawldns --test fuzz_corpus -- --ignored regenerate_seed_corpus --nocapture
  # ...and real Knot and Unbound answers, where they are installed.
  CRAWLDNS_WRITE_FUZZ_SEEDS=1 cargo test -p crawldns --test interop -- --nocapture || true
  exit 0
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
else
  echo "== no nightly toolchain: using the stable compiler with RUSTC_BOOTSTRAP=1"
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi

if [ "$what" = all ]; then
  run=("${targets[@]}")
else
  run=("$what")
fi

cd fuzz
status=0
for target in "${run[@]}"; do
  mkdir -p "work/$target" "artifacts/$target"
  echo "== fuzzing $target for ${seconds}s (seeds: fuzz/corpus/$target, new inputs: fuzz/work/$target)"
  if ! "${fuzz[@]}" run -O "$target" "work/$target" "corpus/$target" -- \
      -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="artifacts/$target/" -max_len=65535 -timeout=10; then
    echo "!! $target found a crash: see fuzz/artifacts/$target/" >&2
    status=1
  fi
done
exit "$status"

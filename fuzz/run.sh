#!/usr/bin/env bash
# Runs every fuzz target for a while (FUZZ_SECONDS each, default 60) with cargo-fuzz on the
# nightly toolchain, and prints one line per target: executions, corpus, crashes. Crashes
# are kept in fuzz/artifacts/<target>/; turn each into a regression test (see FUZZING.md).
set -uo pipefail
cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-60}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q nightly || { echo "cargo fuzz needs a nightly toolchain (rustup toolchain install nightly)"; exit 1; }
targets=$(cargo +nightly fuzz list)
cargo +nightly fuzz build || exit 1
failed=0
printf '%-16s %12s %8s %8s\n' target executions corpus crashes
for target in $targets; do
  log=$(mktemp)
  mkdir -p "corpus/$target"
  cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 >"$log" 2>&1
  status=$?
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  [ -n "$runs" ] || runs=$(grep -oE '#[0-9]+' "$log" | tail -1 | tr -d '#')
  corpus=$(ls "corpus/$target" | wc -l)
  crashes=$(ls "artifacts/$target" 2>/dev/null | wc -l)
  printf '%-16s %12s %8s %8s\n' "$target" "${runs:-?}" "$corpus" "$crashes"
  if [ "$status" -ne 0 ]; then failed=1; tail -30 "$log"; fi
  rm -f "$log"
done
exit $failed

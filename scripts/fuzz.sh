#!/usr/bin/env bash
# Runs each cargo-fuzz target for a while (default 600 s each) and reports, per target, the
# inputs tried and whether it crashed. Needs the nightly toolchain and cargo-fuzz (installed here
# when missing). A crash leaves its input in fuzz/artifacts/<target>/: make it a regression test.
#
#   scripts/fuzz.sh [SECONDS] [TARGET…]      e.g. scripts/fuzz.sh 600
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(query_params cursor csv_ingest)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log=$(mktemp)
  # No sanitizer: qanat forbids unsafe code, and what is looked for is a panic (debug assertions
  # and overflow checks are on), an abort, a hang or a runaway allocation. -timeout: an input
  # taking 10 s is a hang; -rss_limit_mb: one using 4 GiB is a leak.
  if cargo +nightly fuzz run -s none "$t" "corpus/$t" -- -max_total_time="$secs" -timeout=10 \
      -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1; then
    verdict="no crash"
  else
    verdict="CRASH (see fuzz/artifacts/$t)"; status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  echo "$t: ${secs}s, $runs inputs, $cov, $verdict"
  [ "$status" = 0 ] || tail -40 "$log"
  rm -f "$log"
done
exit $status

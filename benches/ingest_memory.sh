#!/usr/bin/env bash
# Peak memory of `qanat ingest` by table size and sort budget: the first N rows of the
# Sirene-shaped CSV (benches/gen_sirene.py, as benches/sirene.sh writes it) ingested to the local
# disk with `ingest.sort_bytes` set, the process's peak RSS as /usr/bin/time reports it (the
# whole run: the Parquet file, its indexes, and the load of the version that checks it).
#
# usage: benches/ingest_memory.sh [CSV]
#   ROWS="3000000 10000000 30000000"   table sizes (the first rows of CSV)
#   BUDGETS="134217728 536870912"      sort budgets in bytes
#   WORK=/tmp/qanat-ingest-memory      where the cut CSVs and the stores go
# needs: a release-like build (cargo build --profile fast), GNU time.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
CSV=${1:-/tmp/qanat-sirene/sirene.csv}
Q=${QANAT:-$REPO/target/fast/qanat}
ROWS=${ROWS:-3000000 10000000 30000000}
BUDGETS=${BUDGETS:-134217728 536870912}
WORK=${WORK:-/tmp/qanat-ingest-memory}
mkdir -p "$WORK"
echo "| rows | sort_bytes | peak RSS | time |"
echo "|---|---|---|---|"
for n in $ROWS; do
  cut=$WORK/first-$n.csv
  [ -f "$cut" ] || head -n $((n + 1)) "$CSV" > "$cut"
  for budget in $BUDGETS; do
    rm -rf "$WORK/store" "$WORK/ds" && mkdir -p "$WORK/ds"
    printf 'title = "first rows"\nsource = "%s"\n' "$cut" > "$WORK/ds/t.toml"
    out=$(QANAT_SORT_BYTES=$budget /usr/bin/time -f "peak %M KiB %e s" "$Q" --storage "$WORK/store" \
      --datasets "$WORK/ds" ingest t 2>&1 | tail -1)
    kib=$(echo "$out" | awk '{print $2}')
    echo "| $n | $((budget / 1048576)) MiB | $((kib * 1024 / 1000000)) MB | $(echo "$out" | awk '{print $4}') s |"
  done
done

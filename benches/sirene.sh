#!/usr/bin/env bash
# A Sirene-sized table served from Parquet (beyond the resident budget), tried as a new user would
# with the result cache off: ingest time and peak memory (DuckDB beside it when the peers kit's
# venv has it), then each query shape at C=1 and C=16 with wrk, the server pinned to CPU 1 and
# wrk to CPU 0.
#
# usage: benches/sirene.sh [ROWS]      (default 10,000,000; WORK=/tmp/qanat-sirene; SKIP_INGEST=1
#        reuses the stored version; ONLY="first_page past_end" runs those queries only)
# needs: a release-like build (cargo build --profile fast), wrk, python3.
set -euo pipefail
ROWS=${1:-10000000}
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/qanat-sirene}
Q=${QANAT:-$REPO/target/fast/qanat}
DUCK_PY=${DUCK_PY:-/tmp/qanat-peers/.venv/bin/python}
PORT=8391
CSV=$WORK/sirene.csv
mkdir -p "$WORK"
cd "$WORK"
if [ ! -f "$CSV" ] || [ "$(cat rows 2>/dev/null)" != "$ROWS" ]; then
  python3 "$REPO/benches/gen_sirene.py" "$CSV" "$ROWS"
  echo "$ROWS" > rows
fi
cat "$CSV" > /dev/null

if [ -z "${SKIP_INGEST:-}" ]; then
echo "## ingest ($(du -m "$CSV" | cut -f1) MB of CSV, $ROWS rows)"
rm -rf store
mkdir -p ds
printf 'title = "Sirene-shaped establishments"\nsource = "%s"\n' "$CSV" > ds/sirene.toml
/usr/bin/time -f "qanat ingest: %e s, peak RSS %M KiB" "$Q" --storage store --datasets ds \
  ingest sirene 2>&1 | tail -2
if [ -x "$DUCK_PY" ] && "$DUCK_PY" -c "import duckdb" 2>/dev/null; then
  /usr/bin/time -f "duckdb COPY to parquet: %e s, peak RSS %M KiB" "$DUCK_PY" -c "
import duckdb
duckdb.connect().execute(\"COPY (SELECT * FROM read_csv_auto('$CSV')) TO '$WORK/duck.parquet' (FORMAT PARQUET)\")
" 2>&1 | tail -1
fi
fi

SIRET=$(sed -n "$((ROWS / 2 + 1))p" "$CSV" | cut -d, -f3)
COMMUNE=$(sed -n "123457p" "$CSV" | cut -d, -f9)
D=/api/datasets/sirene/data
declare -a NAMES=(lookup commune range_sort groupby first_page past_end)
declare -a PATHS=(
  "$D?siret__exact=$SIRET"
  "$D?codecommuneetablissement__exact=$COMMUNE&page_size=20"
  "$D?datecreationetablissement__greater=2025-06-01&datecreationetablissement__sort=desc&page_size=20"
  "$D?trancheeffectifsetablissement__groupby&trancheeffectifsetablissement__count"
  "$D?page_size=20"
  "$D?page=$((ROWS / 20 + 10))&page_size=20"
)
taskset -c 1 "$Q" --storage store --datasets ds --addr 127.0.0.1:$PORT --resident-bytes 0 \
  --cache-bytes 0 serve > serve.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
until curl -sf -o /dev/null "http://127.0.0.1:$PORT/health"; do sleep 0.2; done
echo
echo "## queries from Parquet, cache off (median of 3 runs of 5 s; p99 of the median run)"
echo "| query | first answer | C=1 req/s | C=16 req/s | C=16 p99 |"
echo "|---|---|---|---|---|"
for i in "${!NAMES[@]}"; do
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" ${NAMES[$i]} "* ]]; then continue; fi
  url="http://127.0.0.1:$PORT${PATHS[$i]}"
  first=$(curl -s -o /dev/null -w "%{http_code} %{time_total}s" "$url")
  runs() {
    for _ in 1 2 3; do
      taskset -c 0 wrk -t1 -c"$1" -d5s --timeout 30s --latency "$url" | awk '/Requests\/sec/ {r=$2} / 99%/ {p=$2} END {print r, p}'
    done | sort -n | sed -n 2p
  }
  one=$(runs 1 | cut -d' ' -f1)
  sixteen=$(runs 16)
  echo "| ${NAMES[$i]} | $first | $one | ${sixteen% *} | ${sixteen#* } |"
done

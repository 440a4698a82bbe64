#!/usr/bin/env bash
# A Sirene-sized table (30 million establishments by default) served from Parquet, beyond the
# resident budget, with the result cache off: ingest time and peak memory, then the issue's query
# shapes at C=1 and C=16 with wrk (the server on CPU 1, wrk on CPU 0).
#
# usage: benches/sirene.sh [ROWS]
#   WORK=/tmp/qanat-sirene     where the CSV and the stores go
#   BACKEND=local|s3           the storage: a directory, or a bucket on an S3 server on
#                              127.0.0.1: s3s-fs when S3S_FS names its binary, else moto
#                              (QANAT_MOTO_SERVER, or moto_server on the PATH; small tables only)
#   LAYOUT=default|by_commune|by_commune_nobloom
#                              the Parquet layout: as published (siret order, bloom filters on
#                              identifier-like columns), `[layout] sort_by` the commune code,
#                              the same without bloom filters
#   SKIP_INGEST=1              reuse the stored version (local backend)
#   ONLY="lookup cursor"       run those queries only
# needs: a release-like build (cargo build --profile fast), wrk, python3.
set -euo pipefail
ROWS=${1:-30000000}
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/qanat-sirene}
Q=${QANAT:-$REPO/target/fast/qanat}
BACKEND=${BACKEND:-local}
LAYOUT=${LAYOUT:-default}
PORT=8391
CSV=$WORK/sirene.csv
mkdir -p "$WORK"
cd "$WORK"
if [ ! -f "$CSV" ] || [ "$(cat rows 2>/dev/null)" != "$ROWS" ]; then
  python3 "$REPO/benches/gen_sirene.py" "$CSV" "$ROWS"
  echo "$ROWS" > rows
fi

PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
DS=$WORK/ds-$LAYOUT
mkdir -p "$DS"
{
  printf 'title = "Sirene-shaped establishments"\nsource = "%s"\n' "$CSV"
  case $LAYOUT in
    default) ;;
    by_commune) printf '[layout]\nsort_by = ["codecommuneetablissement"]\n' ;;
    by_commune_nobloom) printf '[layout]\nsort_by = ["codecommuneetablissement"]\nbloom_filters = []\n' ;;
    *) echo "LAYOUT: default, by_commune or by_commune_nobloom" >&2; exit 2 ;;
  esac
} > "$DS/sirene.toml"

if [ "$BACKEND" = s3 ]; then
  S3_PORT=8392
  if [ -n "${S3S_FS:-}" ]; then
    # s3s-fs (crates.io: cargo install s3s-fs --features binary) keeps objects as files and
    # reads ranges from them; moto holds each object in one buffer and copies all of it for
    # every ranged read, which makes a 2 GB Parquet file unreadable in practice.
    rm -rf "$WORK/s3s" && mkdir -p "$WORK/s3s/sirene"
    "$S3S_FS" --host 127.0.0.1 --port $S3_PORT --access-key bench --secret-key bench "$WORK/s3s" > s3.log 2>&1 &
  else
    MOTO=${QANAT_MOTO_SERVER:-$(command -v moto_server)}
    "$MOTO" -H 127.0.0.1 -p $S3_PORT > s3.log 2>&1 &
  fi
  PIDS+=($!)
  until curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/"; do sleep 0.2; done
  [ -n "${S3S_FS:-}" ] || curl -sf -X PUT "http://127.0.0.1:$S3_PORT/sirene" > /dev/null
  export AWS_ENDPOINT=http://127.0.0.1:$S3_PORT AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
  STORE=s3://sirene/$LAYOUT
  SKIP_INGEST=
else
  STORE=$WORK/store-$LAYOUT
fi

if [ -z "${SKIP_INGEST:-}" ]; then
  echo "## ingest ($(du -m "$CSV" | cut -f1) MB of CSV, $ROWS rows; $BACKEND, layout $LAYOUT)"
  [ "$BACKEND" = s3 ] || rm -rf "$STORE"
  /usr/bin/time -f "qanat ingest: %e s, peak RSS %M KiB" "$Q" --storage "$STORE" --datasets "$DS" \
    ingest sirene 2>&1 | tail -2
  if [ "$BACKEND" = local ]; then
    echo "stored: $(du -sm "$STORE/sirene" | cut -f1) MB"
  fi
fi

SIRET=$(sed -n "$((ROWS / 2 + 1))p" "$CSV" | cut -d, -f3)
COMMUNE=$(sed -n "123457p" "$CSV" | cut -d, -f9)
D=/api/datasets/sirene/data
taskset -c 1 "$Q" --storage "$STORE" --datasets "$DS" --addr 127.0.0.1:$PORT --resident-bytes 0 \
  --cache-bytes 0 --rate-limit 0 serve --read-only > serve.log 2>&1 &
PIDS+=($!)
until curl -sf -o /dev/null "http://127.0.0.1:$PORT/health"; do sleep 0.2; done
# A cursor deep in the file: the next link of a page in the middle of the table.
CURSOR=$(curl -sf "http://127.0.0.1:$PORT$D?page=$((ROWS / 40))&page_size=20" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["links"]["next"].split("/sirene/data", 1)[1])')
declare -a NAMES=(lookup commune_sorted groupby cursor first_page near)
declare -a PATHS=(
  "$D?siret__exact=$SIRET"
  "$D?codecommuneetablissement__exact=$COMMUNE&datecreationetablissement__sort=desc&page_size=20"
  "$D?trancheeffectifsetablissement__groupby&trancheeffectifsetablissement__count"
  "$D$CURSOR"
  "$D?page_size=20"
  "$D?near=48.8566,2.3522,300&page_size=20"
)
echo
echo "## queries from Parquet ($BACKEND, layout $LAYOUT), cache off (median of 3 runs of 5 s; p99 of the median run)"
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
echo
echo "server peak RSS: $(grep VmHWM /proc/"${PIDS[-1]}"/status | awk '{print $2, $3}')"

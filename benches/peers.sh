#!/usr/bin/env bash
# qanat beside nginx, ROAPI and Datasette, in one run, with the kit of ../shared/bench/serve:
# the 1,000,000-row table it generates, then the GTFS NYC subway stop_times (446,924 rows).
#   benches/peers.sh [WORKDIR]      # default /tmp/qanat-peers; about 50 minutes on 2 cores
# Each server is pinned to CPU 1 and wrk to CPU 0 by the kit; qanat runs twice, with the result
# cache off (--cache-bytes 0) and on (the default). Reports: WORKDIR/results/RESULTS_q.md and
# RESULTS_nyc.md. qanat is built with the `fast` profile (release without LTO: a cold LTO build
# takes 25+ minutes here).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
KIT=$REPO/../shared/bench/serve
WORK=${1:-/tmp/qanat-peers}
[ -d "$KIT" ] || { echo "no kit at $KIT" >&2; exit 1; }
mkdir -p "$WORK"
cp -rn "$KIT"/. "$WORK"/
cd "$WORK"
./setup_peers.sh
(cd "$REPO" && cargo build --profile fast)
Q=$REPO/target/fast/qanat
PY=.venv/bin/python
NYC=$(cd "$KIT/../../data/transport/gtfs_us_nyc_subway_2024" && pwd)/stop_times.txt
mkdir -p qempty logs results

# Stores ingested once, so that the servers start on a known version (the cursor queries name it).
prepare() { # STORE FILE PORT
  rm -rf "$1"
  timeout 300 "$Q" --storage "$1" --datasets qempty --rate-limit 0 --addr "127.0.0.1:$3" serve "$2" > "logs/prep_$3.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 600); do curl -sf -o /dev/null "http://127.0.0.1:$3/health" && break; sleep 0.5; done
  kill "$pid"; wait "$pid" || true
}
cursor() { # STORE PAGE ROW
  python3 - "$@" <<'PY'
import base64, json, sys
store, page, row = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
v = json.load(open(f"{store}/stop-times/current.json"))["version"]
t = json.dumps({"v": v, "p": page, "k": [], "r": row}, separators=(",", ":")).encode()
print(base64.urlsafe_b64encode(t).decode().rstrip("="))
PY
}

prepare "$WORK/qstore" data/stop_times.csv 8097
# A group-by with a sum and an average (issue 11's target), added to qanat's and ROAPI's sets.
python3 - <<'PY'
import json
for f, q in [("queries/qanat.json", {"id": "q7_groupby_sum", "path": "/api/datasets/stop-times/data?category__groupby&shape_dist_traveled__sum&stop_sequence__avg&page_size=100"}),
             ("queries/roapi.json", {"id": "q7_groupby_sum", "method": "POST", "path": "/api/sql", "body": "SELECT category, SUM(shape_dist_traveled) AS s, AVG(stop_sequence) AS a FROM {TABLE} GROUP BY category ORDER BY category"})]:
    d = json.load(open(f))
    d["queries"] = [x for x in d["queries"] if x["id"] != q["id"]] + [q]
    json.dump(d, open(f, "w"), indent=1)
PY
C=$(cursor "$WORK/qstore" 5001 499999)
python3 - "$C" <<'PY'
import json, sys
d = json.load(open("queries/qanat.json"))
d["queries"] = [q for q in d["queries"] if q["id"] != "q4c_deep_cursor"]
d["queries"].insert(4, {"id": "q4c_deep_cursor",
                        "path": "/api/datasets/stop-times/data?page_size=100&cursor=" + sys.argv[1]})
json.dump(d, open("queries/qanat.json", "w"), indent=1)
PY
for p in nginx roapi_parquet datasette; do
  $PY bench_serve.py --peer "$p" --duration 5 --runs 3 --conc 1,16 2>"logs/serve_$p.log"
done
for mode in nocache cache; do
  extra=""; [ $mode = nocache ] && extra="--cache-bytes 0"
  $PY bench_serve.py --label "qanat_$mode" --queries queries/qanat.json --port 8090 --ready-path /health \
    --cmd "$Q --storage $WORK/qstore --datasets qempty --rate-limit 0 --addr 127.0.0.1:{PORT} $extra serve data/stop_times.csv" \
    --duration 5 --runs 3 --conc 1,16 2>"logs/serve_qanat_$mode.log"
done
$PY report.py --labels nginx,roapi_parquet,datasette,qanat_nocache,qanat_cache > results/RESULTS_q.md

# The real table: the peers through the kit's run_real.sh, then qanat on the same file.
INGEST_RUNS=1 PEERS="roapi_parquet datasette" CONC=1,16 RUNS=3 DURATION=5 ./run_real.sh "$NYC" > logs/run_real.log 2>&1
prepare "$WORK/qstore_nyc" "$NYC" 8098
C=$(cursor "$WORK/qstore_nyc" 4001 399999)
cat > queries/nyc/qanat.json <<JSON
{
 "_doc": "qanat on the GTFS NYC subway stop_times (dataset id stop-times), same ids as roapi.json",
 "queries": [
  {"id": "q1_first_page",  "path": "/api/datasets/stop-times/data?page_size=100"},
  {"id": "q2_eq_filter",   "path": "/api/datasets/stop-times/data?stop_id__exact=127N&page_size=100"},
  {"id": "q3_range_sort",  "path": "/api/datasets/stop-times/data?stop_sequence__greater=20&stop_sequence__strictly_less=25&departure_time__sort=asc&page_size=100"},
  {"id": "q4_deep_offset", "path": "/api/datasets/stop-times/data?page=4001&page_size=100"},
  {"id": "q4c_deep_cursor", "path": "/api/datasets/stop-times/data?page_size=100&cursor=$C"},
  {"id": "q5_groupby",     "path": "/api/datasets/stop-times/data?stop_id__groupby&stop_id__count&stop_id__count__sort=desc&page_size=1000"},
  {"id": "q6_csv_export",  "path": "/api/datasets/stop-times/data.csv?stop_sequence__less=3", "expect_rows": 46441}
 ]
}
JSON
S=real_gtfs_us_nyc_subway_2024
for mode in nocache cache; do
  extra=""; [ $mode = nocache ] && extra="--cache-bytes 0"
  $PY bench_serve.py --label "qanat_${mode}__$S" --queries queries/nyc/qanat.json --port 8096 --ready-path /health \
    --cmd "$Q --storage $WORK/qstore_nyc --datasets qempty --rate-limit 0 --addr 127.0.0.1:{PORT} $extra serve $NYC" \
    --duration 5 --runs 3 --conc 1,16 2>"logs/serve_qanat_${mode}_nyc.log"
done
$PY report.py --labels "roapi_parquet__$S,datasette__$S,qanat_nocache__$S,qanat_cache__$S" > results/RESULTS_nyc.md
echo "reports: $WORK/results/RESULTS_q.md $WORK/results/RESULTS_nyc.md"

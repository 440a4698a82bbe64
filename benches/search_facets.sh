#!/usr/bin/env bash
# Full-text search and facets on the kit's 1,000,000-row table (../shared/bench/serve/
# gen_dataset.py), uncached, beside an unfaceted page, qanat and Datasette 0.65.5 (FTS5 over
# trip_id, city, category, stop_desc, built by sqlite-utils; its facet and SQL time limits raised
# so that it answers) alternating in one run; then qanat without its word index (cells folded).
# usage: benches/search_facets.sh [RUNS] [N]     (medians of the runs' p50 and p99 to compare)
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
runs=${1:-3}
n=${2:-50}
qanat_binary
scratch_for_a_server
datasette_venv
python3 "$repo/../shared/bench/serve/gen_dataset.py" --rows 1000000 --out "$work/stop_times.csv" >/dev/null
"$venv/bin/sqlite-utils" insert "$work/st.db" stop_times "$work/stop_times.csv" --csv --delimiter ';'
"$venv/bin/sqlite-utils" enable-fts "$work/st.db" stop_times trip_id city category stop_desc --fts5
ds_port=$(free_port)
"$venv/bin/datasette" serve "$work/st.db" --port "$ds_port" --setting suggest_facets off \
  --setting facet_time_limit_ms 20000 --setting sql_time_limit_ms 20000 \
  --setting max_returned_rows 1000 >"$work/datasette.log" 2>&1 &
ds_pid=$!
trap 'kill "$ds_pid" 2>/dev/null || true; [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/empty"
port=$(free_port)
base=http://127.0.0.1:$port
serve() {
  QANAT_LOG=${QANAT_LOG:-info} "$QANAT" serve --storage "$work/store" --datasets "$work/empty" \
    --addr "127.0.0.1:$port" --rate-limit 0 "$work/stop_times.csv" >>"$work/serve.log" 2>&1 &
  pid=$!
  wait_ready "$base"
  until curl -fsS "$base/api/datasets/stop-times/data?page_size=1" >/dev/null 2>&1; do sleep 0.5; done
}
serve
grep -a "sidecars written\|ingested version" "$work/serve.log" | sed 's/\x1b\[[0-9;]*m//g' || true
q="$base/api/datasets/stop-times/data?page_size={n}"
d="http://127.0.0.1:$ds_port/st/stop_times.json?_size={n}"
until curl -fsS "http://127.0.0.1:$ds_port/st/stop_times.json?_size=1" >/dev/null 2>&1; do sleep 0.5; done
for run in $(seq "$runs"); do
  start=$(( (run - 1) * n ))
  echo "== run $run: qanat"
  python3 "$repo/benches/uncached.py" "$n" "$start" "page|$q" "page, 1 facet|$q&facets=category" \
    "page, 3 facets|$q&facets=category,city,service_date:month" "q=stade|$q&q=stade" \
    "q=coupe monde 2030|$q&q=coupe%20monde%202030" "q=fes|$q&q=fes" \
    "q=ملعب|$q&q=%D8%A7%D9%84%D9%85%D9%84%D8%B9%D8%A8" "q + 2 facets|$q&q=stade&facets=category,city" \
    "q=0001234, relevance|$q&q=0001234&q_sort=relevance" "q=stade, relevance|$q&q=stade&q_sort=relevance"
  echo "== run $run: datasette"
  python3 "$repo/benches/uncached.py" "$n" "$start" "page|$d" "page, 1 facet|$d&_facet=category" \
    "page, 3 facets|$d&_facet=category&_facet=city&_facet_date=service_date" "q=stade|$d&_search=stade" \
    "q=coupe monde 2030|$d&_search=coupe%20monde%202030" "q=fes|$d&_search=fes" \
    "q=ملعب|$d&_search=%D8%A7%D9%84%D9%85%D9%84%D8%B9%D8%A8" "q + 2 facets|$d&_search=stade&_facet=category&_facet=city"
done
kill "$pid"; wait "$pid" 2>/dev/null || true
find "$work/store" -name words.bin -delete
serve
for run in $(seq "$runs"); do
  echo "== run $run: qanat without its word index (cells folded)"
  python3 "$repo/benches/uncached.py" "$n" "$(( (run - 1) * n ))" "q=stade|$q&q=stade" "q=fes|$q&q=fes" \
    "q=ملعب|$q&q=%D8%A7%D9%84%D9%85%D9%84%D8%B9%D8%A8"
done

#!/usr/bin/env bash
# Timetables and points, uncached, each beside a plain page on the same data, in one run:
#  - the NYC subway GTFS feed of ../shared (446,924 stop_times): departures and arrivals at busy
#    stations, a route's stops, a page of stop_times;
#  - the kit's 1,000,000-row table (../shared/bench/serve/gen_dataset.py, stop_lat/stop_lon):
#    near (500 m, 5 km, with a filter), bbox (a district, a city), a GeoJSON download, a page;
#    Datasette 0.65.5 beside it for the page and the box (its column filters: no geo in core);
#    then qanat again without its spatial index (geo.bin deleted: every row's point tested).
# usage: benches/transport_geo.sh [RUNS] [N]     (medians of the runs' p50 and p99 to compare)
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
runs=${1:-3}
n=${2:-50}
qanat_binary
scratch_for_a_server
datasette_venv
cp "$repo/../shared/data/transport/gtfs_us_nyc_subway_2024/nyc_subway.zip" "$work/nyc-subway.zip"
python3 "$repo/../shared/bench/serve/gen_dataset.py" --rows 1000000 --out "$work/stop_times.csv" >/dev/null
"$venv/bin/sqlite-utils" insert "$work/st.db" stop_times "$work/stop_times.csv" --csv --delimiter ';'
"$venv/bin/sqlite-utils" create-index "$work/st.db" stop_times stop_lat stop_lon
ds_port=$(free_port)
"$venv/bin/datasette" serve "$work/st.db" --port "$ds_port" --setting sql_time_limit_ms 20000 \
  --setting suggest_facets off --setting max_returned_rows 1000 >"$work/datasette.log" 2>&1 &
ds_pid=$!
trap 'kill "$ds_pid" 2>/dev/null || true; [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/empty"
port=$(free_port)
base=http://127.0.0.1:$port
serve() {
  QANAT_LOG=${QANAT_LOG:-info} "$QANAT" serve --storage "$work/store" --datasets "$work/empty" \
    --addr "127.0.0.1:$port" --rate-limit 0 "$work/nyc-subway.zip" "$work/stop_times.csv" >>"$work/serve.log" 2>&1 &
  pid=$!
  wait_ready "$base"
  until curl -fsS "$base/api/datasets/stop-times/data?page_size=1" >/dev/null 2>&1; do sleep 0.5; done
  until curl -fsS "$base/api/gtfs/nyc-subway/routes/E/stops" >/dev/null 2>&1; do sleep 0.5; done
}
serve
grep -a "feed ingested\|spatial index written\|timetable built" "$work/serve.log" | sed 's/\x1b\[[0-9;]*m//g' || true
g="$base/api/gtfs/nyc-subway"
t="$base/api/datasets/nyc-subway-stop-times/data?page_size={n}"
q="$base/api/datasets/stop-times/data?page_size={n}"
d="http://127.0.0.1:$ds_port/st/stop_times.json?_size={n}"
until curl -fsS "http://127.0.0.1:$ds_port/st/stop_times.json?_size=1" >/dev/null 2>&1; do sleep 0.5; done
casa="33.5731,-7.5898"
district="-7.62,33.56,-7.58,33.60"
city="-7.75,33.45,-7.45,33.70"
dbox="stop_lon__gte=-7.62&stop_lon__lte=-7.58&stop_lat__gte=33.56&stop_lat__lte=33.60"
for run in $(seq "$runs"); do
  start=$(( (run - 1) * n ))
  echo "== run $run: qanat, NYC subway feed"
  python3 "$repo/benches/uncached.py" "$n" "$start" \
    "departures Times Sq 08:00|$g/stops/127/departures?date=2018-07-03&after=08:00&limit={n}" \
    "departures Grand Central|$g/stops/631/departures?date=2018-07-07&after=17:30&limit={n}" \
    "arrivals 242 St 00:00|$g/stops/101/arrivals?date=2018-07-02&after=00:00&limit={n}" \
    "page of stop_times|$t"
  python3 "$repo/benches/uncached.py" "$n" 0 "route E's stops|$g/routes/E/stops"
  echo "== run $run: qanat, 1M rows"
  python3 "$repo/benches/uncached.py" "$n" "$start" "page|$q" \
    "near 500 m|$q&near=$casa,500" "near 5 km|$q&near=$casa,5000" \
    "near 5 km, bus only|$q&near=$casa,5000&category__exact=Bus%20interurbain" \
    "bbox district|$q&bbox=$district" "bbox city|$q&bbox=$city" \
    "geojson near 500 m|$base/api/datasets/stop-times/data.geojson?near=$casa,500&page_size={n}"
  echo "== run $run: datasette, 1M rows"
  python3 "$repo/benches/uncached.py" "$n" "$start" "page|$d" "bbox district|$d&$dbox"
done
kill "$pid"; wait "$pid" 2>/dev/null || true
find "$work/store" -name geo.bin -delete
serve
for run in $(seq "$runs"); do
  echo "== run $run: qanat without its spatial index (every point tested)"
  python3 "$repo/benches/uncached.py" "$n" "$(( (run - 1) * n ))" \
    "near 500 m|$q&near=$casa,500" "bbox district|$q&bbox=$district"
done

#!/usr/bin/env bash
# Overload, measured: the capacity of an expensive query (a group-by over a 1,000,000-row table
# read from Parquet, result cache off) at the server's own concurrency, then twice that rate
# offered open-loop (requests start whether or not earlier ones finished) while /health is asked
# 20 times a second. Reports the answers (200 served, 503 shed and how fast, anything else),
# /health's latency, and the server afterwards. Loopback only.
#
#   scripts/shed.sh [ROWS=1000000] [SECONDS=20]     (QANAT=path/to/qanat to skip the build)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
rows=${1:-1000000}
secs=${2:-20}
qanat_binary
scratch_for_a_server
trips_csv "$work/trips.csv" "$rows"
port=$(free_port)
base=http://127.0.0.1:$port
mkdir -p "$work/datasets"
"$QANAT" --datasets "$work/datasets" --storage "$work/storage" --addr "127.0.0.1:$port" \
  --resident-bytes 0 --cache-bytes 0 --page-cache-bytes 0 --rate-limit 0 \
  serve "$work/trips.csv" >"$work/server.log" 2>&1 &
pid=$!
wait_ready "$base"
turns=$(nproc)
turns=$((turns * 4))
url="$base/api/datasets/trips/data?route__groupby&minutes__avg&stop__count&page_size=100"
curl -fsS "$url" >/dev/null
echo "== capacity: wrk, $turns connections (the server's turns), ${secs}s"
wrk -t1 -c"$turns" -d"${secs}s" --latency "$url" | tee "$work/wrk.txt" | grep -E "Requests/sec|99%|Non-2xx|Socket errors" || true
capacity=$(awk '/Requests\/sec/ { print $2 }' "$work/wrk.txt")
offered=$(python3 -c "print(round(2 * $capacity, 1))")
echo "== overload: $offered requests a second offered (twice the capacity), /health 20 a second"
python3 "$repo/scripts/openloop.py" "$base/health" 20 "$secs" 4 >"$work/health.json" &
health=$!
python3 "$repo/scripts/openloop.py" "$url" "$offered" "$secs" 512 | tee "$work/over.json"
wait "$health"
cat "$work/health.json"
echo "== afterwards: half the capacity for 5 s"
python3 "$repo/scripts/openloop.py" "$url" "$(python3 -c "print(round($capacity / 2, 1))")" 5 64
curl -fsS "$base/metrics" | grep -E "^qanat_queries_(shed|waited)_total"
kill -0 "$pid" && echo "server still running"

#!/usr/bin/env bash
# Reads while new versions are published: a query loop (wrk, 4 connections, result cache off) on
# a 1,000,000-row table, first alone, then while the admin route publishes new versions of the
# same dataset one after another. Reports both runs' rate, p99 and errors, the ratio of the
# p99s, and the versions published meanwhile. Loopback only.
#
#   scripts/refresh_reads.sh [ROWS=1000000] [SECONDS=20]   (QANAT=path/to/qanat to skip the build)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
rows=${1:-1000000}
secs=${2:-20}
qanat_binary
scratch_for_a_server
mkdir -p "$work/datasets"
trips_csv "$work/datasets/trips.csv" "$rows"
printf 'title = "trips"\nsource = "trips.csv"\nlicence = "CC0-1.0"\n' > "$work/datasets/trips.toml"
key=reads-during-refresh
printf %s "$key" | sha256sum | cut -d' ' -f1 > "$work/admin.keys"
port=$(free_port)
base=http://127.0.0.1:$port
"$QANAT" --datasets "$work/datasets" --storage "$work/storage" --addr "127.0.0.1:$port" \
  --cache-bytes 0 --rate-limit 0 --admin-keys "$work/admin.keys" \
  serve >"$work/server.log" 2>&1 &
pid=$!
wait_ready "$base"
url="$base/api/datasets/trips/data?route__exact=R42&minutes__greater=600&page_size=50"
curl -fsS "$url" >/dev/null
run() {
  wrk -t1 -c4 -d"${secs}s" --latency "$url" > "$work/$1.txt"
  local rps p99 non2xx sock
  rps=$(awk '/Requests\/sec/ { print $2 }' "$work/$1.txt")
  p99=$(awk '$1 == "99%" { print $2 }' "$work/$1.txt")
  non2xx=$(awk '/Non-2xx/ { print $NF }' "$work/$1.txt"); non2xx=${non2xx:-0}
  sock=$(grep -c "Socket errors" "$work/$1.txt" || true)
  echo "$1: $rps req/s, p99 $p99, non-2xx $non2xx, socket-error lines $sock"
}
# The version read into memory and the caches warm before anything is timed.
wrk -t1 -c4 -d5s "$url" >/dev/null
run baseline
published=0
( while :; do
    curl -fsS -X POST -H "Authorization: Bearer $key" "$base/api/datasets/trips/refresh?force=true" \
      -o "$work/refresh.json" && grep -q '"outcome":"ingested"' "$work/refresh.json" && echo >> "$work/published"
  done ) &
loop=$!
run during_refresh
kill "$loop" 2>/dev/null || true
wait "$loop" 2>/dev/null || true
published=$(wc -l < "$work/published" 2>/dev/null || echo 0)
echo "versions published during the second run: $published"
to_ms() { awk -v t="$1" 'BEGIN { if (t ~ /us$/) print t / 1000; else if (t ~ /ms$/) print t + 0; else print t * 1000 }'; }
b=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$work/baseline.txt")")
d=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$work/during_refresh.txt")")
awk -v b="$b" -v d="$d" 'BEGIN { printf "p99 ratio (during / baseline): %.2f\n", d / b }'

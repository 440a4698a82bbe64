#!/usr/bin/env bash
# Kills `qanat ingest` with SIGKILL at RUNS random moments over a large source and checks, after
# each kill, that the version served is complete and exact: its Parquet files hold the rows of
# one whole generation of the source (row count and a checksum of every row), never a mix or a
# part. At the end one more ingest runs and no partial version may be left on disk.
#
#   scripts/kill9.sh [RUNS=100] [ROWS=1000000]      (QANAT=path/to/qanat to skip the build)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
runs=${1:-100}
rows=${2:-1000000}
qanat_binary
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
venv=${QANAT_TOOLS:-$repo/target/tools}/kill9-venv
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q pyarrow==17.0.0; }
py=$venv/bin/python
mkdir -p "$work/datasets"
printf 'title = "kill -9"\nsource = "k.csv"\nlicence = "CC0-1.0"\n' > "$work/datasets/k.toml"
export QANAT_DATASETS=$work/datasets QANAT_STORAGE=$work/storage
unset QANAT_CONFIG
unset QANAT_LOG

# Generation g of the source: id, a label, a value that depends on g, and g itself.
write_source() {
  "$py" - "$work/datasets/k.csv" "$rows" "$1" <<'PY'
import sys
path, rows, g = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "w") as f:
    f.write("id,label,value,gen\n")
    f.writelines(f"{i},row {i} of generation {g},{(i * 7 + g) % 1000}.5,{g}\n" for i in range(rows))
PY
}

# The served version: its generation, rows and checksum, or PARTIAL and why.
check_served() {
  "$py" - "$work/storage/k" "$rows" <<'PY'
import json, sys, os, glob
import pyarrow.parquet as pq, pyarrow.compute as pc
root, rows = sys.argv[1], int(sys.argv[2])
version = json.load(open(os.path.join(root, "current.json")))["version"]
vdir = os.path.join(root, version)
manifest = os.path.join(vdir, "manifest.json")
if not os.path.exists(manifest):
    print(f"PARTIAL {version}: no manifest"); sys.exit()
m = json.load(open(manifest))
t = pq.read_table(sorted(glob.glob(os.path.join(vdir, "*.parquet"))))
gens = set(pc.unique(t["gen"]).to_pylist())
if len(gens) != 1 or t.num_rows != rows or t.num_rows != m["rows"]:
    print(f"PARTIAL {version}: {t.num_rows} rows (manifest {m['rows']}), generations {sorted(gens)}"); sys.exit()
g = gens.pop()
ids = t["id"].to_pylist()
want_value = sum((i * 7 + g) % 1000 + 0.5 for i in range(rows))
ok = sorted(ids) == list(range(rows)) and abs(pc.sum(t["value"]).as_py() - want_value) < 1e-3
print(f"{'OK' if ok else 'PARTIAL'} {version} generation {g}")
PY
}

write_source 0
"$QANAT" ingest k >/dev/null 2>&1
start=$(date +%s%N)
write_source 1
"$QANAT" ingest k >/dev/null 2>&1
full_ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "a whole ingest of $rows rows: ${full_ms} ms; $runs kills at random moments within it"
partial=0 killed_before=0 published=0
for run in $(seq 1 "$runs"); do
  write_source $((run + 1))
  delay_ms=$(( RANDOM * full_ms / 32768 ))
  "$QANAT" ingest k >/dev/null 2>&1 &
  pid=$!
  sleep "$(awk -v ms="$delay_ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
  if kill -9 "$pid" 2>/dev/null; then killed_before=$((killed_before + 1)); fi
  wait "$pid" 2>/dev/null || true
  verdict=$(check_served)
  case $verdict in
    OK*generation\ $((run + 1))) published=$((published + 1)) ;;
    OK*) ;;
    *) partial=$((partial + 1)); echo "run $run (kill at ${delay_ms} ms): $verdict" ;;
  esac
done
left=$(find "$work/storage/k" -mindepth 1 -maxdepth 1 -type d | while read -r d; do
  [ -f "$d/manifest.json" ] || echo "$d"; done | wc -l)
write_source $((runs + 2))
QANAT_INGEST__KEEP_REPLACED_MS=0 "$QANAT" ingest k >/dev/null 2>&1
after=$(find "$work/storage/k" -mindepth 1 -maxdepth 1 -type d | while read -r d; do
  [ -f "$d/manifest.json" ] || echo "$d"; done | wc -l)
final=$(check_served)
echo "runs: $runs; killed while running: $killed_before; the new generation published before the kill: $published"
echo "served versions partial or wrong after a kill: $partial"
echo "partial version directories left by the kills: $left; after the next ingest: $after"
echo "after the final ingest: $final"
[ "$partial" = 0 ] && [ "$after" = 0 ] && [[ $final == OK* ]]

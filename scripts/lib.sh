# Shared by the scripts here (sourced): the binary, a synthetic table, a free port.

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The qanat binary: $QANAT, or the `fast` profile's, built when missing or stale.
qanat_binary() {
  if [ -z "${QANAT:-}" ]; then
    (cd "$repo" && cargo build --profile fast -q)
    QANAT=$repo/target/fast/qanat
  fi
}

# A timetable-like table of ROWS rows, written by us: id, route (97), stop (9973), minutes, day.
trips_csv() {
  python3 - "$1" "$2" <<'PY'
import sys
path, rows = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write("id,route,stop,minutes,day\n")
    f.writelines(f"{i},R{i % 97},S{(i * 31) % 9973},{(i * 13) % 1440},2026-{i % 12 + 1:02d}-{i % 28 + 1:02d}\n"
                 for i in range(rows))
PY
}

# wrk, a scratch directory $work, and on exit the server of $pid stopped and $work removed.
scratch_for_a_server() {
  command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
  work=$(mktemp -d)
  pid=""
  trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
}

# Waits until the server of $pid answers /health at $1 (fails if it exits).
wait_ready() {
  until curl -fsS "$1/health" >/dev/null 2>&1; do sleep 0.2; kill -0 "$pid"; done
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Datasette 0.65.5 and sqlite-utils 4.2.1 in $venv (target/bench-venv), installed when missing.
datasette_venv() {
  venv=$repo/target/bench-venv
  if ! "$venv/bin/datasette" --version 2>/dev/null | grep -q 0.65.5; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q datasette==0.65.5 sqlite-utils==4.2.1
  fi
}

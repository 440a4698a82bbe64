"""The Parquet and Arrow downloads read as they are by pyarrow, polars and DuckDB: the same rows
and values as the NDJSON export of the same query, with the columns' types.

usage: binary_check.py BASE_URL SCRATCH_DIR
"""

import io
import json
import pathlib
import sys
import urllib.request

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq

base, scratch = sys.argv[1], pathlib.Path(sys.argv[2])
query = (
    "departement__in=2A,2B&population_municipale__greater=2000"
    "&population_municipale__sort=desc&columns=code_insee,nom_de_la_commune,population_municipale,latitude"
)


def get(path, accept=None):
    req = urllib.request.Request(base + path, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req) as r:
        return r.headers["Content-Type"], r.read()


_, ndjson = get(f"/api/datasets/communes/data.ndjson?{query}")
expected = [json.loads(line) for line in ndjson.decode().splitlines()]
assert len(expected) > 10, expected
columns = ["code_insee", "nom_de_la_commune", "population_municipale", "latitude"]

kind, parquet = get(f"/api/datasets/communes/data.parquet?{query}")
assert kind == "application/vnd.apache.parquet", kind
kind, arrow = get(f"/api/datasets/communes/data.arrow?{query}")
assert kind == "application/vnd.apache.arrow.stream", kind
_, by_accept = get(f"/api/datasets/communes/data?{query}", "application/vnd.apache.parquet")
assert by_accept == parquet

# pyarrow: the Parquet file and the IPC stream.
for table in (pq.read_table(io.BytesIO(parquet)), pa.ipc.open_stream(arrow).read_all()):
    assert table.column_names == columns, table.schema
    assert table.schema.field("code_insee").type == pa.string(), table.schema
    assert table.schema.field("population_municipale").type == pa.int64(), table.schema
    assert table.schema.field("latitude").type == pa.float64(), table.schema
    assert table.to_pylist() == expected

# polars, from the bytes as downloaded.
for frame in (pl.read_parquet(io.BytesIO(parquet)), pl.read_ipc_stream(io.BytesIO(arrow))):
    assert frame.columns == columns, frame.schema
    assert frame.schema["population_municipale"] == pl.Int64, frame.schema
    assert frame.to_dicts() == expected

# DuckDB, from the file as saved.
path = scratch / "communes.parquet"
path.write_bytes(parquet)
rows = duckdb.sql(f"SELECT * FROM read_parquet('{path}')").fetchall()
assert [dict(zip(columns, r)) for r in rows] == expected
(total,) = duckdb.sql(
    f"SELECT count(*), sum(population_municipale) FROM read_parquet('{path}')"
).fetchall()
assert total == (len(expected), sum(r["population_municipale"] for r in expected)), total

print(f"binary downloads: {len(expected)} rows read alike by pyarrow, polars and DuckDB")

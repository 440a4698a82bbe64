"""Validates qanat's GeoJSON downloads with the `geojson` package (RFC 7946 structure and
coordinates) and compares them with the NDJSON export of the same query.

Usage: geojson_check.py BASE_URL
"""

import json
import sys
import urllib.request

import geojson

QUERIES = [
    ("villes-maroc", ""),
    ("villes-maroc", "near=34.0209,-6.8416,80000"),
    ("villes-maroc", "bbox=-7.75,33.40,-7.35,33.70&columns=nom,population"),
    ("communes", "departement__in=2A,2B"),
]


def get(url):
    with urllib.request.urlopen(url) as r:
        return r.read().decode("utf-8"), r.headers.get("content-type")


def main():
    base = sys.argv[1]
    checked = 0
    for dataset, query in QUERIES:
        text, media = get(f"{base}/api/datasets/{dataset}/data.geojson?{query}")
        if media != "application/geo+json":
            sys.exit(f"{dataset}?{query}: content-type {media}")
        collection = geojson.loads(text)
        if not collection.is_valid:
            sys.exit(f"{dataset}?{query}: not valid GeoJSON: {collection.errors()}")
        if collection["type"] != "FeatureCollection":
            sys.exit(f"{dataset}?{query}: not a FeatureCollection")
        schema = json.loads(get(f"{base}/api/datasets/{dataset}")[0])["schema"]
        lat = next(c["name"] for c in schema if c.get("geo") == "latitude")
        lon = next(c["name"] for c in schema if c.get("geo") == "longitude")
        extra = f"&columns={lat},{lon}," + query.split("columns=")[1] if "columns=" in query else ""
        plain = query.split("&columns=")[0] if "columns=" in query else query
        rows = [json.loads(line) for line in
                get(f"{base}/api/datasets/{dataset}/data.ndjson?{plain}{extra}")[0].splitlines()]
        features = collection["features"]
        if len(features) != len(rows) or not rows:
            sys.exit(f"{dataset}?{query}: {len(features)} features for {len(rows)} rows")
        for feature, row in zip(features, rows):
            point = [row.pop(lon), row.pop(lat)]
            if None in point:
                # A row without a point is a Feature whose geometry is null.
                if feature["geometry"] is not None:
                    sys.exit(f"{dataset}?{query}: {feature['geometry']} for a row without a point")
            elif feature["geometry"]["coordinates"] != point:
                sys.exit(f"{dataset}?{query}: {feature['geometry']} is not {point}")
            if dict(feature["properties"]) != row:
                sys.exit(f"{dataset}?{query}: properties {feature['properties']} are not {row}")
        checked += len(features)
    print(f"geojson: {checked} features in {len(QUERIES)} downloads are valid GeoJSON and equal the NDJSON rows")


if __name__ == "__main__":
    main()

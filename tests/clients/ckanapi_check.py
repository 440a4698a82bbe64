"""The real ckanapi client (PyPI), unchanged, against qanat: datastore_search by POST and by
GET, package_show, errors as CKAN's exceptions, and a dump of every dataset by its CLI.

usage: ckanapi_check.py BASE_URL
"""

import json
import os
import subprocess
import sys
import tempfile

import ckanapi

base = sys.argv[1]
ckan = ckanapi.RemoteCKAN(base)

found = ckan.action.datastore_search(
    resource_id="villes-maroc",
    filters={"region": ["04", "06"]},
    sort="population desc",
    limit=3,
    fields=["nom", "population", "region"],
)
assert [r["nom"] for r in found["records"]] == ["Casablanca", "Rabat", "Salé"], found["records"]
assert found["records"][0]["region"] == "06", found["records"]
assert [f["id"] for f in found["fields"]] == ["nom", "population", "region"], found["fields"]
total = found["total"]

# The same query read by GET (filters as JSON text), and by the native route.
get_only = ckanapi.RemoteCKAN(base, get_only=True)
again = get_only.action.datastore_search(
    resource_id="villes-maroc",
    filters=json.dumps({"region": ["04", "06"]}),
    sort="population desc",
    limit=3,
    fields="nom,population,region",
)
assert again["records"] == found["records"], again["records"]
import urllib.request  # noqa: E402

with urllib.request.urlopen(f"{base}/api/datasets/villes-maroc/data?region__in=04,06") as r:
    assert json.load(r)["meta"]["total"] == total, total

package = ckan.action.package_show(id="communes")
assert package["name"] == "communes" and package["num_resources"] == 1, package
assert package["resources"][0]["datastore_active"] is True, package["resources"]

try:
    ckan.action.datastore_search(resource_id="villes-maroc", filters="{not json")
    raise AssertionError("a bad filter was accepted")
except ckanapi.ValidationError as e:
    assert e.error_dict["filters"] == ["Cannot parse JSON"], e.error_dict
try:
    ckan.action.datastore_search(resource_id="no-such-resource")
    raise AssertionError("an unknown resource was found")
except ckanapi.NotFound:
    pass

# ckanapi's own dump: package_list, then package_show of each.
with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "datasets.jsonl")
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ckanapi"), "dump", "datasets", "--all", "-q", "-r", base, "-O", out],
        check=True,
        env=env,
    )
    with open(out, encoding="utf-8") as f:
        names = sorted(json.loads(line)["name"] for line in f)
listed = ckan.action.package_list()
assert names == sorted(listed) and "communes" in names, (names, listed)
print(f"ckanapi: datastore_search, package_show, errors and a dump of {len(names)} datasets OK")

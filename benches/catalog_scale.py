#!/usr/bin/env python3
"""A portal-sized catalog: N datasets (most small, a few over a million rows) ingested into a
storage, then `qanat serve` started over it, timed to healthy `/health` and `/api/datasets`, and
its resident memory read while it answers.

    python3 benches/catalog_scale.py --datasets 10000 --big 3 --binary target/release/qanat

Ingesting ten thousand files one by one takes minutes, so a few templates are ingested with
`qanat ingest` and their stored versions copied under the other ids (each manifest rewritten
with its id): what `serve` reads is exactly what `qanat ingest` writes. Prints one line per
measure; run it a few times and take the median (the machine is shared).
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

PRODUCERS = ["Haut-Commissariat au Plan", "Ministère de la Santé", "ONDA", "Ville de Rabat",
             "Région Souss-Massa", "Agence Urbaine de Casablanca", "ONCF", "Ministère du Tourisme"]
WORDS = ["population", "écoles", "hôpitaux", "tourisme", "transport", "budget", "marchés",
         "énergie", "eau", "routes", "naissances", "emploi", "agriculture", "pêche"]


def small_csv(path, rows, seed):
    rnd = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        f.write("code;commune;valeur;date\n")
        for i in range(rows):
            f.write(f"{i:05d};Commune {rnd.randint(1, 500)};{rnd.randint(0, 10**6)},{rnd.randint(0, 99):02d};"
                    f"2024-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}\n")


def write_toml(path, title, source, producer, keywords):
    kw = ", ".join(json.dumps(k) for k in keywords)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"title = {json.dumps(title)}\nsource = {json.dumps(source)}\n"
                f"licence = \"ODbL-1.0\"\nproducer = {json.dumps(producer)}\nkeywords = [{kw}]\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read()


def build(root, n, big, big_rows, binary):
    datasets = os.path.join(root, "datasets")
    storage = os.path.join(root, "storage")
    os.makedirs(datasets)
    templates = []
    # Templates: a few small shapes and the big ones, ingested for real.
    for t in range(5):
        templates.append((f"template-small-{t}", 20 + 40 * t))
    for b in range(big):
        templates.append((f"template-big-{b}", big_rows))
    for tid, rows in templates:
        small_csv(os.path.join(datasets, f"{tid}.csv"), rows, tid)
        write_toml(os.path.join(datasets, f"{tid}.toml"), tid, f"{tid}.csv", PRODUCERS[0], ["modèle"])
    t0 = time.time()
    subprocess.run([binary, "--datasets", datasets, "--storage", storage, "ingest", "--all"],
                   check=True, stderr=subprocess.DEVNULL)
    print(f"ingested {len(templates)} templates in {time.time() - t0:.1f} s", flush=True)
    rnd = random.Random(7)
    for i in range(n):
        tid, _ = templates[len(templates) - 1 - (i % big)] if i < big else templates[i % 5]
        did = f"jeu-{i:05d}"
        src_dir = os.path.join(storage, tid)
        dst_dir = os.path.join(storage, did)
        shutil.copytree(src_dir, dst_dir)
        for dirpath, _, files in os.walk(dst_dir):
            for name in files:
                if name.endswith(".json"):
                    p = os.path.join(dirpath, name)
                    with open(p) as f:
                        text = f.read()
                    with open(p, "w") as f:
                        f.write(text.replace(json.dumps(tid), json.dumps(did)))
        # The dataset file points at the template's CSV, unchanged since it was ingested.
        write_toml(os.path.join(datasets, f"{did}.toml"),
                   f"{rnd.choice(WORDS).capitalize()} {i} — {rnd.choice(WORDS)}",
                   f"{tid}.csv", rnd.choice(PRODUCERS), rnd.sample(WORDS, 3))
    for tid, _ in templates:
        os.remove(os.path.join(datasets, f"{tid}.toml"))
        shutil.rmtree(os.path.join(storage, tid))
    return datasets, storage


def measure(binary, datasets, storage):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    t0 = time.time()
    proc = subprocess.Popen([binary, "--datasets", datasets, "--storage", storage,
                             "--addr", f"127.0.0.1:{port}", "serve"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        marks = {}
        while len(marks) < 2 and time.time() - t0 < 120:
            for name, path in [("health", "/health"), ("catalog", "/api/datasets?q=tourisme&page_size=20")]:
                if name in marks:
                    continue
                try:
                    status, _ = get(base + path)
                    if status == 200:
                        marks[name] = time.time() - t0
                except OSError:
                    pass
            time.sleep(0.02)
        for name in ("health", "catalog"):
            print(f"{name}: 200 after {marks.get(name, float('nan')):.2f} s", flush=True)
        print(f"rss after start: {rss_mib(proc.pid):.0f} MiB", flush=True)
        # Queries over a spread of datasets, the big ones included: residency on demand.
        for i in list(range(0, 10000, 97)) + [0, 1, 2]:
            try:
                get(f"{base}/api/datasets/jeu-{i:05d}/data?page_size=5")
            except OSError:
                pass
        status, body = get(base + "/api/datasets?page_size=1")
        total = json.loads(body)["meta"]["total"]
        print(f"catalog total: {total}; rss after queries: {rss_mib(proc.pid):.0f} MiB", flush=True)
        # The start-up pass opens every version in the background.
        while time.time() - t0 < 600:
            metrics = get(base + "/metrics")[1].decode()
            if f"qanat_datasets_loaded {total}\n" in metrics:
                break
            time.sleep(0.2)
        resident = [l for l in metrics.splitlines() if l.startswith("qanat_datasets_resident ")]
        print(f"every version opened after {time.time() - t0:.1f} s; rss {rss_mib(proc.pid):.0f} MiB;"
              f" {resident[0] if resident else ''}", flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", type=int, default=10000)
    ap.add_argument("--big", type=int, default=3, help="datasets over a million rows")
    ap.add_argument("--big-rows", type=int, default=1_200_000)
    ap.add_argument("--binary", default="target/release/qanat")
    ap.add_argument("--runs", type=int, default=3, help="server starts to time")
    ap.add_argument("--keep", help="build the storage in this directory and keep it")
    args = ap.parse_args()
    root = args.keep or tempfile.mkdtemp(prefix="qanat-scale-")
    try:
        datasets = os.path.join(root, "datasets")
        if os.path.isdir(datasets):
            storage = os.path.join(root, "storage")
        else:
            t0 = time.time()
            datasets, storage = build(root, args.datasets, args.big, args.big_rows, args.binary)
            print(f"built {args.datasets} datasets in {time.time() - t0:.1f} s", flush=True)
        for run in range(args.runs):
            print(f"-- start {run + 1}", flush=True)
            measure(args.binary, datasets, storage)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

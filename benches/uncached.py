#!/usr/bin/env python3
"""Uncached latency of query shapes: each request differs from every other (its page size moves
with `{n}`), so none is answered from a result cache. Prints p50 and p99 per shape, in ms, and
the row count the answer reports (`meta.total`, or Datasette's `filtered_table_rows_count`).

usage: uncached.py N START 'name|URL with {n}' ...   (page sizes START+20 … START+20+N-1)
"""
import json
import statistics
import sys
import time
import urllib.request

n, start = int(sys.argv[1]), int(sys.argv[2])
for case in sys.argv[3:]:
    name, template = case.split("|", 1)
    times, body = [], b""
    for i in range(n):
        url = template.replace("{n}", str(20 + start + i))
        began = time.perf_counter()
        with urllib.request.urlopen(url) as r:
            body = r.read()
        times.append((time.perf_counter() - began) * 1000)
    times.sort()
    answer = json.loads(body)
    rows = answer.get("meta", {}).get("total", answer.get("filtered_table_rows_count"))
    p99 = times[min(n - 1, int(n * 0.99))]
    print(f"{name:26s} p50 {statistics.median(times):8.1f} ms   p99 {p99:8.1f} ms   rows {rows}")

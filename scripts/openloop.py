#!/usr/bin/env python3
"""An open-loop load on one URL: requests start at a fixed rate whether or not earlier ones
finished (unlike wrk, whose connections wait for their answers), so an overloaded server is
offered more than it can take. Prints one JSON line: requests, statuses, latency percentiles of
each status, and the achieved rate.

    openloop.py URL RATE SECONDS [MAX_CONNECTIONS]
"""
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


async def main(url, rate, seconds, max_conns):
    u = urlsplit(url)
    host, port = u.hostname, u.port or 80
    target = (u.path or "/") + (f"?{u.query}" if u.query else "")
    request = f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    idle, results, open_conns = [], [], [0]
    sem = asyncio.Semaphore(max_conns)

    async def one():
        async with sem:
            started = time.perf_counter()
            conn = idle.pop() if idle else None
            try:
                if conn is None:
                    conn = await asyncio.open_connection(host, port)
                    open_conns[0] += 1
                reader, writer = conn
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                chunked = b"transfer-encoding: chunked" in head.lower()
                if chunked:
                    while True:
                        size = int((await reader.readline()).strip(), 16)
                        await reader.readexactly(size + 2)
                        if size == 0:
                            break
                else:
                    await reader.readexactly(length)
                results.append((status, time.perf_counter() - started))
                idle.append(conn)
            except Exception as e:  # a refused or reset connection is a result too
                results.append((f"error:{type(e).__name__}", time.perf_counter() - started))

    tasks = []
    begin = time.perf_counter()
    n = int(rate * seconds)
    for i in range(n):
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - begin
    out = {"url": url, "offered_per_s": rate, "seconds": round(elapsed, 2),
           "requests": len(results), "connections": open_conns[0], "statuses": {}}
    for status in sorted({s for s, _ in results}, key=str):
        lat = sorted(t for s, t in results if s == status)
        pct = lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2)
        out["statuses"][str(status)] = {"count": len(lat), "p50_ms": pct(0.5),
                                        "p99_ms": pct(0.99), "max_ms": round(lat[-1] * 1000, 2)}
    ok = out["statuses"].get("200", {}).get("count", 0)
    out["answered_200_per_s"] = round(ok / elapsed, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    url, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    max_conns = int(sys.argv[4]) if len(sys.argv) > 4 else 256
    asyncio.run(main(url, rate, seconds, max_conns))

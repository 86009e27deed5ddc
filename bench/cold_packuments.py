#!/usr/bin/env python3
"""The largest packuments, cold: time to first byte, total time and memory.

For each server (Airlock, optionally a second Airlock binary as the baseline, and
Verdaccio), on a fresh data directory: fetch typescript, next, aws-sdk and @types/node
once each (full document, identity, as `curl` asks), then 50 concurrent requests for
`next` on another fresh data directory (cold: they must share one upstream fetch), then
50 concurrent warm requests. Records time to first byte and total per request, the
server's VmRSS after each step, its peak (VmHWM) and its steady VmRSS 5 s after the
load. nginx serving the bytes Airlock served, from disk, is the anchor for the warm
concurrent requests.

Every server is on 127.0.0.1; every step is bounded (one request per package, 50
concurrent requests, 300 s timeout per request). Python 3 standard library only.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the shared helpers: servers, RSS, process cleanup)

PACKAGES = ["typescript", "next", "aws-sdk", "@types/node"]
CONCURRENT_PACKAGE = "next"
CONCURRENCY = 50


def timed_get(base_url: str, path: str, headers: dict | None = None) -> dict:
    """One GET on a new connection: status, time to first byte, total time, size."""
    parsed = bench.urllib.parse.urlparse(base_url)
    if parsed.hostname not in ("127.0.0.1", "localhost"):
        raise RuntimeError(f"refusing a non-loopback URL: {base_url}")
    started = time.monotonic()
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=300)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        first_byte = response.fp.peek(1) if hasattr(response.fp, "peek") else b""
        ttfb = time.monotonic() - started
        body = response.read()
        total = time.monotonic() - started
        return {"status": response.status, "ttfb_s": ttfb, "total_s": total, "bytes": len(body), "body": body,
                "first": bool(first_byte)}
    finally:
        connection.close()


def rss(server: bench.Server) -> tuple[int | None, int | None]:
    """(VmRSS, VmHWM) in KiB; for Verdaccio the process tree's RSS and no HWM."""
    if server.proc is None:
        return None, None
    if server.name.startswith("airlock") or server.name == "nginx":
        return (bench.proc_status_kib(server.proc.pid, "VmRSS"), bench.proc_status_kib(server.proc.pid, "VmHWM"))
    return bench.tree_rss_kib(server.proc.pid), None


def upstream_packument_fetches(server: bench.Server) -> int | None:
    if not server.name.startswith("airlock"):
        return None
    response = bench.http_get(server.url + "-/airlock/metrics",
                              headers={"Authorization": f"Bearer {bench.ADMIN_TOKEN}"})
    if response.status != 200:
        return None
    total = 0
    for line in response.body.decode().splitlines():
        if line.startswith('airlock_upstream_requests_total{kind="packument"'):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def concurrent_requests(base_url: str, path: str) -> dict:
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
        started = time.monotonic()
        results = list(pool.map(lambda _: timed_get(base_url, path), range(CONCURRENCY)))
        wall = time.monotonic() - started
    statuses = sorted({result["status"] for result in results})
    return {"wall_s": wall, "max_total_s": max(r["total_s"] for r in results),
            "max_ttfb_s": max(r["ttfb_s"] for r in results), "statuses": statuses}


class Args:
    """What bench.start_airlock reads from its argparse namespace."""

    def __init__(self, binary: str, upstream: str, out: Path):
        self.airlock_bin = binary
        self.upstream = upstream
        self.data_dir = None
        self.packument_max_age = None
        self.airlock_log = "warn"
        self.keep_verdaccio_storage = False
        self.out = out


def start(kind: str, binary: str | None, args, out: Path) -> bench.Server:
    out.mkdir(parents=True, exist_ok=True)
    if kind == "verdaccio":
        server = bench.start_verdaccio(Args("", args.upstream, out), Path(args.out))
    else:
        server = bench.start_airlock(Args(binary, args.upstream, out), out)
    server.name = kind
    return server


def measure(kind: str, binary: str | None, args, results: dict) -> None:
    label = kind
    out = Path(args.out) / "cold" / label
    row: dict = {"packages": {}}
    results[label] = row

    # 1. One cold request per large packument, in sequence.
    server = start(kind, binary, args, out)
    bench.log(f"{label}: cold packuments")
    served: dict[str, bytes] = {}
    for package in PACKAGES:
        path = "/" + package.replace("/", "%2f")
        result = timed_get(server.url, path)
        now_rss, hwm = rss(server)
        row["packages"][package] = {k: result[k] for k in ("status", "ttfb_s", "total_s", "bytes")}
        row["packages"][package]["rss_kib"] = now_rss
        served[package] = result["body"]
        bench.log(f"  {package}: HTTP {result['status']} ttfb {result['ttfb_s']:.2f}s total {result['total_s']:.2f}s "
                  f"{result['bytes'] / 1e6:.1f} MB, RSS {bench.mib(now_rss)} MiB")
    # Warm: the same documents again, once each.
    for package in PACKAGES:
        path = "/" + package.replace("/", "%2f")
        result = timed_get(server.url, path)
        row["packages"][package]["warm_total_s"] = result["total_s"]
    time.sleep(5)
    row["steady_rss_kib"], row["peak_rss_kib"] = rss(server)
    # 2. 50 concurrent warm requests for `next`.
    row["warm_concurrent"] = concurrent_requests(server.url, "/" + CONCURRENT_PACKAGE)
    time.sleep(5)
    row["after_warm_concurrent_rss_kib"], row["peak_rss_kib"] = rss(server)
    bench.stop(server.proc)
    if kind == "airlock":
        results["_served"] = served

    # 3. 50 concurrent cold requests for `next` on a fresh data directory.
    server = start(kind, binary, args, out)
    bench.log(f"{label}: {CONCURRENCY} concurrent cold requests for {CONCURRENT_PACKAGE}")
    row["cold_concurrent"] = concurrent_requests(server.url, "/" + CONCURRENT_PACKAGE)
    row["cold_concurrent"]["upstream_fetches"] = upstream_packument_fetches(server)
    row["cold_concurrent"]["rss_kib"], row["cold_concurrent"]["peak_rss_kib"] = rss(server)
    bench.stop(server.proc)


def nginx_anchor(args, served: dict[str, bytes], results: dict) -> None:
    out = Path(args.out)
    root = out / "nginx" / "root"
    root.mkdir(parents=True, exist_ok=True)
    (root / CONCURRENT_PACKAGE).write_bytes(served[CONCURRENT_PACKAGE])
    nginx = bench.start_nginx(out)
    results["nginx"] = {"warm_concurrent": concurrent_requests(nginx.url, "/" + CONCURRENT_PACKAGE)}
    results["nginx"]["rss_kib"], _ = rss(nginx)
    bench.stop(nginx.proc)


def report(results: dict) -> str:
    lines = []
    servers = [name for name in results if not name.startswith("_") and name != "nginx"]
    lines.append("cold packument (full, identity), one request each, fresh data directory")
    lines.append(f"{'package':<14}" + "".join(f"{name:>34}" for name in servers))
    for package in PACKAGES:
        cells = []
        for name in servers:
            entry = results[name]["packages"].get(package, {})
            cells.append(f"{entry.get('ttfb_s', 0):7.2f}s ttfb {entry.get('total_s', 0):6.2f}s "
                         f"{bench.mib(entry.get('rss_kib')):>7} MiB")
        lines.append(f"{package:<14}" + "".join(f"{cell:>34}" for cell in cells))
    lines.append(f"{'warm again':<14}" + "".join(
        f"{sum(results[n]['packages'][p].get('warm_total_s', 0) for p in PACKAGES):>33.2f}s" for n in servers))
    lines.append(f"{'peak RSS':<14}" + "".join(f"{bench.mib(results[n].get('peak_rss_kib')):>30} MiB" for n in servers))
    lines.append(f"{'steady RSS':<14}" + "".join(f"{bench.mib(results[n].get('steady_rss_kib')):>30} MiB"
                                                for n in servers))
    lines.append("")
    lines.append(f"{CONCURRENCY} concurrent requests for {CONCURRENT_PACKAGE}")
    for name in servers + (["nginx"] if "nginx" in results else []):
        row = results[name]
        if "cold_concurrent" in row:
            cold = row["cold_concurrent"]
            lines.append(f"  {name:<18} cold: wall {cold['wall_s']:.2f}s, slowest {cold['max_total_s']:.2f}s, "
                         f"statuses {cold['statuses']}, upstream fetches {cold.get('upstream_fetches')}, "
                         f"RSS {bench.mib(cold.get('rss_kib'))} MiB, peak {bench.mib(cold.get('peak_rss_kib'))} MiB")
        warm = row["warm_concurrent"]
        lines.append(f"  {name:<18} warm: wall {warm['wall_s']:.2f}s, slowest {warm['max_total_s']:.2f}s, "
                     f"statuses {warm['statuses']}")
    return "\n".join(lines)


def static_upstream(directory: Path) -> str:
    """Serves the four packuments, fetched once from the public registry, from files on
    127.0.0.1, so that the cold numbers measure the servers and not the network (their
    tarball URLs point at the public registry and are not served here: checks that
    start in the background fail fast instead of scanning)."""
    import http.server
    import threading
    import urllib.request

    for package in PACKAGES:
        target = directory / package  # `@types/node` becomes a directory, as the path decodes
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            url = "https://registry.npmjs.org/" + package.replace("/", "%2f")
            with urllib.request.urlopen(url, timeout=120) as response:
                target.write_bytes(response.read())

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--airlock-bin", default=os.environ.get("AIRLOCK_BIN",
                                                                str(bench.REPO / "target" / "release" / "airlock")))
    parser.add_argument("--baseline-bin", help="a second Airlock binary (e.g. the previous release) run the same way")
    parser.add_argument("--verdaccio", action="store_true", help="also Verdaccio 6 (installed into bench/out)")
    parser.add_argument("--upstream", default="https://registry.npmjs.org")
    parser.add_argument("--static-upstream", action="store_true",
                        help="serve the four packuments from files on loopback instead of the public registry")
    parser.add_argument("--out", default=str(bench.DEFAULT_OUT))
    args = parser.parse_args()
    if args.static_upstream:
        args.upstream = static_upstream(Path(args.out) / "static-upstream")
        bench.log(f"static upstream on {args.upstream}")
    results: dict = {}
    measure("airlock", args.airlock_bin, args, results)
    if args.baseline_bin:
        measure("airlock-baseline", args.baseline_bin, args, results)
    if args.verdaccio:
        measure("verdaccio", None, args, results)
    nginx_anchor(args, results.pop("_served"), results)
    text = report(results)
    print(text)
    out = Path(args.out)
    suffix = "-static" if args.static_upstream else ""
    (out / f"cold-packuments{suffix}.txt").write_text(text + "\n")
    (out / f"cold-packuments{suffix}.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

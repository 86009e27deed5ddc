#!/usr/bin/env python3
"""Airlock benchmark: cached packuments and tarballs under wrk, memory, and warm `npm ci`.

Every server runs on 127.0.0.1 only, every load run is bounded in time, and every
process the script starts is stopped when it exits. See bench/README.md.

Python 3 standard library only. Needs wrk, nginx and npm on PATH and a release build
of Airlock (`cargo build --release -p airlock-server`).
"""

from __future__ import annotations

import argparse
import atexit
import datetime as _dt
import gzip
import hashlib
import base64
import concurrent.futures
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "bench" / "out"

# Targets from issue 2 ("Speed and memory targets"): Airlock's rate as a fraction of
# nginx serving the same bytes from files in the same run.
TARGET_TARBALL = 0.5
TARGET_GZIP_PACKUMENT = 0.5
TARGET_IDENTITY_PACKUMENT = 0.7
TARGET_RSS_MIB = 64.0
# "warm npm ci as fast as against nginx": Airlock time / nginx time, with 10 % for noise.
TARGET_NPM_CI_TIME_RATIO = 1.10

# The project whose lockfile `npm ci` installs: a handful of popular dev dependencies
# that resolve to roughly 700 packages (741 in November 2026).
PROJECT_DEV_DEPENDENCIES = {
    "jest": "^29.7.0",
    "eslint": "^8.57.0",
    "webpack": "^5.90.0",
    "webpack-cli": "^5.1.4",
    "typescript": "^5.4.0",
    "@babel/core": "^7.24.0",
    "@babel/preset-env": "^7.24.0",
    "ts-jest": "^29.1.0",
    "prettier": "^3.2.0",
    "@typescript-eslint/parser": "^7.0.0",
    "@typescript-eslint/eslint-plugin": "^7.0.0",
    "webpack-dev-server": "^5.0.0",
}

ABBREVIATED = "application/vnd.npm.install-v1+json"
ADMIN_TOKEN = secrets.token_hex(24)


def log(message: str) -> None:
    stamp = _dt.datetime.now().strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Processes: everything started here is stopped at exit, by process group.
# ---------------------------------------------------------------------------

_CHILDREN: list[subprocess.Popen] = []


def spawn(args: list[str], *, log_path: Path, env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen:
    log_file = open(log_path, "ab")
    proc = subprocess.Popen(
        args,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
        start_new_session=True,  # its own process group, so we can stop it and its children
    )
    _CHILDREN.append(proc)
    return proc


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


def _cleanup() -> None:
    for proc in reversed(_CHILDREN):
        try:
            stop(proc)
        except Exception as error:  # noqa: BLE001 - best effort at exit
            print(f"cleanup: {error}", file=sys.stderr)


atexit.register(_cleanup)


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------
# HTTP (loopback only; no proxies, no automatic decompression).
# ---------------------------------------------------------------------------

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes


def http_get(url: str, headers: dict | None = None, timeout: float = 300.0) -> Response:
    host = urllib.parse.urlparse(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise RuntimeError(f"refusing to fetch a non-loopback URL: {url}")
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return Response(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


def wait_http(url: str, proc: subprocess.Popen | None, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} while starting")
        try:
            response = http_get(url, timeout=5)
            if response.status < 500:
                return
            last = f"HTTP {response.status}"
        except OSError as error:
            last = str(error)
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f}s ({last})")


# ---------------------------------------------------------------------------
# Memory.
# ---------------------------------------------------------------------------


def proc_status_kib(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def tree_rss_kib(pid: int) -> int | None:
    """VmRSS of a process plus its descendants (Verdaccio may fork)."""
    total = proc_status_kib(pid, "VmRSS")
    if total is None:
        return None
    try:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
        for child in out.split():
            total += tree_rss_kib(int(child)) or 0
    except OSError:
        pass
    return total


def mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f}"


class RssSampler:
    """Samples a process's VmRSS every 200 ms into a CSV and keeps the maximum per phase."""

    def __init__(self, pid: int, csv_path: Path):
        self.pid = pid
        self.phase = "start"
        self.max_by_phase: dict[str, int] = {}
        self._csv = open(csv_path, "w")
        self._csv.write("seconds,phase,vmrss_kib\n")
        self._start = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def set_phase(self, phase: str) -> None:
        self.sample()
        self.phase = phase
        self.sample()

    def sample(self) -> None:
        kib = proc_status_kib(self.pid, "VmRSS")
        if kib is None:
            return
        with self._lock:
            phase = self.phase
            self.max_by_phase[phase] = max(kib, self.max_by_phase.get(phase, 0))
            if not self._csv.closed:
                self._csv.write(f"{time.monotonic() - self._start:.1f},{phase},{kib}\n")

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.sample()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        with self._lock:
            self._csv.close()


# ---------------------------------------------------------------------------
# wrk.
# ---------------------------------------------------------------------------


@dataclass
class WrkResult:
    rps: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    transfer_per_sec: str = ""
    requests: int = 0
    non_2xx: int = 0
    socket_errors: str = ""
    raw: str = ""
    error: str = ""


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def _to_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    result = WrkResult(raw=output)
    for line in output.splitlines():
        stripped = line.strip()
        if stripped.startswith("Requests/sec:"):
            result.rps = float(stripped.split()[1])
        elif stripped.startswith("Transfer/sec:"):
            result.transfer_per_sec = stripped.split()[1]
        elif re.match(r"^50(\.0+)?%\s", stripped):
            result.p50_ms = _to_ms(stripped.split()[1])
        elif re.match(r"^99(\.0+)?%\s", stripped):
            result.p99_ms = _to_ms(stripped.split()[1])
        elif "requests in" in stripped:
            result.requests = int(stripped.split()[0])
        elif stripped.startswith("Non-2xx or 3xx responses:"):
            result.non_2xx = int(stripped.split(":")[1])
        elif stripped.startswith("Socket errors:"):
            result.socket_errors = stripped.split(":", 1)[1].strip()
    return result


def run_wrk(url: str, headers: dict, args: argparse.Namespace) -> WrkResult:
    if urllib.parse.urlparse(url).hostname not in ("127.0.0.1", "localhost"):
        raise RuntimeError(f"refusing to load a non-loopback URL: {url}")
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        f"--timeout={args.wrk_timeout}s",
        "--latency",
    ]
    for key, value in headers.items():
        command += ["-H", f"{key}: {value}"]
    command.append(url)
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=args.duration + args.wrk_timeout + 30
        )
    except subprocess.TimeoutExpired:
        return WrkResult(error="wrk did not finish in time")
    result = parse_wrk(completed.stdout)
    if completed.returncode != 0:
        result.error = f"wrk exit {completed.returncode}: {completed.stderr.strip()[:200]}"
    return result


# ---------------------------------------------------------------------------
# nginx serving the same bytes from files.
# ---------------------------------------------------------------------------


def write_nginx_config(base: Path, port: int) -> Path:
    (base / "tmp").mkdir(parents=True, exist_ok=True)
    (base / "logs").mkdir(parents=True, exist_ok=True)
    user_line = ""
    if os.geteuid() == 0:
        # As root nginx would switch its workers to `nobody`; keep the invoking user so
        # the workers can read bench/out.
        user_line = "user root root;"
    config = f"""# Generated by bench/bench.py; nginx serving the bytes Airlock served, from files.
{user_line}
daemon off;
master_process on;
worker_processes auto;
pid {base}/nginx.pid;
error_log {base}/logs/error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path {base}/tmp/body;
    proxy_temp_path {base}/tmp/proxy;
    fastcgi_temp_path {base}/tmp/fastcgi;
    uwsgi_temp_path {base}/tmp/uwsgi;
    scgi_temp_path {base}/tmp/scgi;
    types {{
        application/octet-stream tgz;
    }}
    default_type application/octet-stream;

    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        root {base}/root;

        # Packuments: the identity bytes, and next to each a .gz with the exact gzip
        # bytes Airlock served.
        location /__bench/packuments/ {{
            default_type application/json;
            gzip_static on;
            gzip_vary on;
        }}
        location / {{
            try_files $uri =404;
        }}
    }}
}}
"""
    path = base / "nginx.conf"
    path.write_text(config)
    return path


# ---------------------------------------------------------------------------
# Servers.
# ---------------------------------------------------------------------------


_SERVERS: list = []


@dataclass
class Server:
    name: str
    url: str  # base URL with a trailing slash
    proc: subprocess.Popen | None = None
    rss: list = field(default_factory=list)  # (label, VmRSS KiB)

    def sample_rss(self, label: str) -> None:
        if self.proc is None:
            return
        self.rss.append((label, tree_rss_kib(self.proc.pid)))


def start_airlock(args, out: Path) -> Server:
    port = free_port()
    data_dir = Path(args.data_dir) if args.data_dir else out / "airlock-data"
    if not args.data_dir and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.pop("AIRLOCK_CONFIG", None)
    if args.packument_max_age:
        config = out / "airlock.toml"
        config.write_text(f'# Generated by bench/bench.py\n[upstream]\npackument_max_age = "{args.packument_max_age}"\n')
        env["AIRLOCK_CONFIG"] = str(config)
    env.update(
        {
            "AIRLOCK_LISTEN": f"127.0.0.1:{port}",
            "AIRLOCK_DATA_DIR": str(data_dir),
            "AIRLOCK_UPSTREAM": args.upstream,
            "AIRLOCK_COOLING_PERIOD": "0s",
            "AIRLOCK_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "AIRLOCK_LOG": args.airlock_log,
            # The benchmark's own throwaway instance: a random admin token, so that it can
            # approve versions the checks hold (see settle_lockfile).
            "AIRLOCK_ADMIN_TOKEN": ADMIN_TOKEN,
        }
    )
    log_path = out / "airlock.log"
    log_path.write_bytes(b"")
    # Run a private copy: a rebuild of target/release/airlock during the run (other
    # people's cargo builds) must neither change nor crash the binary being measured.
    binary = out / "airlock-under-test"
    shutil.copy2(args.airlock_bin, binary)
    proc = spawn([str(binary), "serve"], log_path=log_path, env=env)
    server = Server("airlock", f"http://127.0.0.1:{port}/", proc)
    _SERVERS.append(server)
    wait_http(server.url + "-/ping", proc, 60, "airlock")
    log(f"airlock {args.airlock_bin} on {server.url} (pid {proc.pid}, data {data_dir}, log {log_path})")
    return server


def start_nginx(out: Path) -> Server:
    base = out / "nginx"
    (base / "root").mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = write_nginx_config(base, port)
    test = subprocess.run(["nginx", "-t", "-p", str(base), "-e", str(base / "logs" / "error.log"), "-c", str(config)],
                          capture_output=True, text=True)
    if test.returncode != 0:
        raise RuntimeError(f"nginx -t failed:\n{test.stderr}")
    proc = spawn(["nginx", "-p", str(base), "-e", str(base / "logs" / "error.log"), "-c", str(config)],
                 log_path=base / "logs" / "stdout.log")
    server = Server("nginx", f"http://127.0.0.1:{port}/", proc)
    _SERVERS.append(server)
    wait_http(server.url + "__bench/ready", proc, 20, "nginx")
    log(f"nginx on {server.url} (pid {proc.pid}, config {config})")
    return server


def start_verdaccio(args, out: Path) -> Server:
    base = out / "verdaccio"
    base.mkdir(parents=True, exist_ok=True)
    entry = base / "node_modules" / "verdaccio" / "bin" / "verdaccio"
    if not entry.exists():
        log("installing verdaccio@6 into bench/out/verdaccio (from the npm registry)")
        # verdaccio-audit asks for `node-fetch@cjs`, a dist-tag that registry mirrors do
        # not always carry; pin it to the 2.x line that tag names.
        (base / "package.json").write_text(json.dumps({
            "name": "airlock-bench-verdaccio", "private": True, "overrides": {"node-fetch": "^2.7.0"},
        }) + "\n")
        env = npm_env()
        env.pop("npm_config_registry", None)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "verdaccio@6"],
            cwd=base, env=env, check=True,
        )
    port = free_port()
    storage = base / "storage"
    if storage.exists() and not args.keep_verdaccio_storage:
        shutil.rmtree(storage)
    storage.mkdir(parents=True, exist_ok=True)
    config = base / "config.yaml"
    config.write_text(
        f"""# Generated by bench/bench.py
storage: {storage}
listen: 127.0.0.1:{port}
uplinks:
  npmjs:
    url: {args.upstream.rstrip('/')}/
    # Long enough that the benchmark never revalidates upstream while loading it.
    maxage: 60m
    timeout: 60s
packages:
  '@*/*':
    access: $all
    publish: $authenticated
    proxy: npmjs
  '**':
    access: $all
    publish: $authenticated
    proxy: npmjs
server:
  keepAliveTimeout: 60
web:
  enable: false
log: {{ type: file, path: {base}/verdaccio-app.log, level: warn }}
max_body_size: 512mb
"""
    )
    proc = spawn(["node", str(entry), "--config", str(config), "--listen", f"127.0.0.1:{port}"],
                 log_path=base / "verdaccio.log", cwd=base)
    server = Server("verdaccio", f"http://127.0.0.1:{port}/", proc)
    _SERVERS.append(server)
    wait_http(server.url + "-/ping", proc, 60, "verdaccio")
    log(f"verdaccio on {server.url} (pid {proc.pid}, config {config})")
    return server


# ---------------------------------------------------------------------------
# Workloads.
# ---------------------------------------------------------------------------


@dataclass
class Workload:
    key: str
    label: str
    path: str  # path on Airlock and on the second registry
    nginx_path: str  # path on nginx with the same bytes
    headers: dict
    target: float
    size: int = 0  # response body size from Airlock
    digest: str = ""  # sha256 of the body Airlock served


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def prepare_workloads(airlock: Server, nginx_root: Path, package: str) -> list[Workload]:
    """Warms Airlock, fetches the exact bytes it serves, and writes them into nginx's root."""
    quoted = package.replace("/", "%2f")
    packument_url = airlock.url + quoted
    for attempt in range(3):
        response = http_get(packument_url, {"Accept": "application/json"})
        if response.status == 200:
            break
        log(f"GET /{quoted}: HTTP {response.status}, retrying")
        time.sleep(2)
    else:
        raise RuntimeError(f"airlock does not serve {package}: HTTP {response.status} {response.body[:300]!r}")
    full = json.loads(response.body)
    latest = full["dist-tags"]["latest"]
    tarball_url = full["versions"][latest]["dist"]["tarball"]
    tarball_path = urllib.parse.urlparse(tarball_url).path
    log(f"{package}@{latest}: {len(full['versions'])} versions, tarball {tarball_url}")

    # The first tarball download may run the checks in the request; make sure it is stored.
    for attempt in range(5):
        response = http_get(airlock.url + tarball_path.lstrip("/"))
        if response.status == 200:
            break
        log(f"GET {tarball_path}: HTTP {response.status} {response.body[:200]!r}, retrying")
        time.sleep(3)
    else:
        raise RuntimeError(f"airlock does not serve {tarball_path}: HTTP {response.status}")

    pk_dir = nginx_root / "__bench" / "packuments"
    pk_dir.mkdir(parents=True, exist_ok=True)
    workloads = [
        Workload("full-identity", f"packument {package} full, identity", "/" + quoted,
                 "/__bench/packuments/full", {"Accept": "application/json"}, TARGET_IDENTITY_PACKUMENT),
        Workload("full-gzip", f"packument {package} full, gzip", "/" + quoted,
                 "/__bench/packuments/full", {"Accept": "application/json", "Accept-Encoding": "gzip"},
                 TARGET_GZIP_PACKUMENT),
        Workload("abbr-identity", f"packument {package} abbreviated, identity", "/" + quoted,
                 "/__bench/packuments/abbr", {"Accept": ABBREVIATED}, TARGET_IDENTITY_PACKUMENT),
        Workload("abbr-gzip", f"packument {package} abbreviated, gzip", "/" + quoted,
                 "/__bench/packuments/abbr", {"Accept": ABBREVIATED, "Accept-Encoding": "gzip"},
                 TARGET_GZIP_PACKUMENT),
        Workload("tarball", f"tarball {Path(tarball_path).name}", tarball_path, tarball_path, {}, TARGET_TARBALL),
    ]

    # Two passes: the first may render and compress; the second must give the same bytes.
    bodies = {}
    for _ in range(2):
        for workload in workloads:
            response = http_get(airlock.url + workload.path.lstrip("/"), workload.headers)
            if response.status != 200:
                raise RuntimeError(f"airlock {workload.key}: HTTP {response.status}")
            encoding = response.headers.get("content-encoding", "identity")
            wants_gzip = "gzip" in workload.headers.get("Accept-Encoding", "")
            if wants_gzip and encoding != "gzip":
                raise RuntimeError(f"airlock {workload.key}: asked for gzip, got Content-Encoding {encoding}")
            if not wants_gzip and encoding not in ("identity", ""):
                raise RuntimeError(f"airlock {workload.key}: asked for identity, got Content-Encoding {encoding}")
            previous = bodies.get(workload.key)
            if previous is not None and previous != response.body:
                log(f"note: airlock {workload.key} bytes changed between two requests "
                    f"({len(previous)} -> {len(response.body)} bytes)")
            bodies[workload.key] = response.body
            workload.size = len(response.body)
            workload.digest = sha256(response.body)

    if gzip.decompress(bodies["full-gzip"]) != bodies["full-identity"]:
        log("note: airlock's gzip full packument does not decompress to its identity bytes")
    if gzip.decompress(bodies["abbr-gzip"]) != bodies["abbr-identity"]:
        log("note: airlock's gzip abbreviated packument does not decompress to its identity bytes")

    (pk_dir / "full").write_bytes(bodies["full-identity"])
    (pk_dir / "full.gz").write_bytes(bodies["full-gzip"])
    (pk_dir / "abbr").write_bytes(bodies["abbr-identity"])
    (pk_dir / "abbr.gz").write_bytes(bodies["abbr-gzip"])
    target = nginx_root / tarball_path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(bodies["tarball"])
    (nginx_root / "__bench" / "ready").write_text("ok\n")
    return workloads


def verify_nginx(nginx: Server, workloads: list[Workload]) -> None:
    """nginx must return exactly the bytes Airlock served, in the same encoding."""
    for workload in workloads:
        response = http_get(nginx.url + workload.nginx_path.lstrip("/"), workload.headers)
        if response.status != 200:
            raise RuntimeError(f"nginx {workload.key}: HTTP {response.status}")
        if sha256(response.body) != workload.digest:
            raise RuntimeError(f"nginx {workload.key}: {len(response.body)} bytes differing from the "
                               f"{workload.size} bytes airlock served")
        wants_gzip = "gzip" in workload.headers.get("Accept-Encoding", "")
        if wants_gzip and response.headers.get("content-encoding") != "gzip":
            raise RuntimeError(f"nginx {workload.key}: gzip_static did not serve the .gz file")


# ---------------------------------------------------------------------------
# npm ci.
# ---------------------------------------------------------------------------


def npm_env(registry: str | None = None) -> dict:
    env = dict(os.environ)
    env.update(
        {
            # A user-level `omit-lockfile-registry-resolved=true` would drop `resolved`
            # from the lockfile and make npm ci fetch packuments; the benchmark needs them.
            "npm_config_omit_lockfile_registry_resolved": "false",
            "npm_config_audit": "false",
            "npm_config_fund": "false",
            "npm_config_update_notifier": "false",
            "npm_config_progress": "false",
        }
    )
    if registry:
        env["npm_config_registry"] = registry
    return env


def create_project(project: Path) -> None:
    if project.exists():
        shutil.rmtree(project)
    project.mkdir(parents=True)
    package_json = {
        "name": "airlock-bench-project",
        "version": "1.0.0",
        "private": True,
        "description": "npm ci benchmark project generated by bench/bench.py",
        "devDependencies": PROJECT_DEV_DEPENDENCIES,
    }
    (project / "package.json").write_text(json.dumps(package_json, indent=2) + "\n")


def lockfile_packages(project: Path) -> dict:
    lock = json.loads((project / "package-lock.json").read_text())
    return {path: entry for path, entry in lock.get("packages", {}).items() if path and entry.get("resolved")}


def rewrite_lockfile(src: Path, dst: Path, old_base: str, new_base: str) -> None:
    """Copies the project (package.json and lockfile) with `resolved` URLs moved to new_base."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    shutil.copy2(src / "package.json", dst / "package.json")
    lock = json.loads((src / "package-lock.json").read_text())
    old_base = old_base.rstrip("/") + "/"
    new_base = new_base.rstrip("/") + "/"
    changed = 0
    for entry in lock.get("packages", {}).values():
        resolved = entry.get("resolved")
        if resolved and resolved.startswith(old_base):
            entry["resolved"] = new_base + resolved[len(old_base):]
            changed += 1
    (dst / "package-lock.json").write_text(json.dumps(lock, indent=2) + "\n")
    log(f"{dst.name}: {changed} resolved URLs now under {new_base}")


def http_post_json(url: str, payload: dict, headers: dict) -> Response:
    if urllib.parse.urlparse(url).hostname not in ("127.0.0.1", "localhost"):
        raise RuntimeError(f"refusing to post to a non-loopback URL: {url}")
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={**headers, "Content-Type": "application/json"})
    try:
        with _OPENER.open(request, timeout=300) as response:
            return Response(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, dict(error.headers), error.read())


def settle_lockfile(packages: dict, airlock: Server) -> list[dict]:
    """Requests every locked tarball (8 at a time) so that Airlock checks each version,
    then approves, as the benchmark's admin, the locked versions its checks held, and
    returns them (package, version, reason). A warm `npm ci` needs every version served."""
    def fetch(entry):
        path = urllib.parse.urlparse(entry["resolved"]).path
        return entry, http_get(airlock.url + path.lstrip("/"))

    locked = {}
    for path, entry in packages.items():
        name = entry.get("name") or path.rsplit("node_modules/", 1)[-1]
        locked[(name, entry["version"])] = entry
    failed = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        for entry, response in pool.map(fetch, packages.values()):
            if response.status != 200:
                failed.append((entry, response))
    log(f"  {len(packages) - len(failed)} of {len(packages)} locked tarballs served, {len(failed)} refused")
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    listing = http_get(airlock.url + "-/airlock/api/versions?state=held&limit=5000", auth)
    if listing.status != 200:
        raise RuntimeError(f"listing held versions: HTTP {listing.status} {listing.body[:300]!r}")
    approved = []
    for item in json.loads(listing.body)["versions"]:
        key = (item["package"], item["version"])
        if key not in locked:
            continue
        reason = item.get("reason") or ""
        segment = item["package"].replace("/", "%2f")
        response = http_post_json(
            f"{airlock.url}-/airlock/api/packages/{segment}/versions/{item['version']}/approve",
            {"comment": "approved by bench/bench.py to measure a warm npm ci"}, auth)
        if response.status != 200:
            raise RuntimeError(f"approving {key}: HTTP {response.status} {response.body[:300]!r}")
        log(f"  approved {item['package']}@{item['version']} (held: {reason[:160]})")
        approved.append({"package": item["package"], "version": item["version"], "reason": reason})
    for entry, _ in failed:
        entry2, response = fetch(entry)
        if response.status != 200:
            raise RuntimeError(f"airlock still refuses {entry['resolved']}: HTTP {response.status} {response.body[:300]!r}")
    return approved


def ensure_alive(server: "Server | None") -> None:
    """Raises if a server the benchmark started has exited."""
    if server is None or server.proc is None:
        return
    code = server.proc.poll()
    if code is not None:
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        raise RuntimeError(f"{server.name} (pid {server.proc.pid}) has died with {how}")


def npm_ci(project: Path, registry: str, out: Path, label: str) -> float:
    node_modules = project / "node_modules"
    if node_modules.exists():
        shutil.rmtree(node_modules)
    cache = Path(tempfile.mkdtemp(prefix="npm-cache-", dir=out / "npm"))
    log_path = out / "npm" / f"npm-ci-{label}.log"
    command = [
        "npm", "ci", "--registry", registry, "--cache", str(cache), "--prefer-online",
        "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=warn",
    ]
    start = time.monotonic()
    with open(log_path, "wb") as log_file:
        completed = subprocess.run(command, cwd=project, env=npm_env(registry), stdout=log_file,
                                   stderr=subprocess.STDOUT, timeout=1800)
    elapsed = time.monotonic() - start
    shutil.rmtree(cache, ignore_errors=True)
    if completed.returncode != 0:
        for server in _SERVERS:
            ensure_alive(server)
        tail = log_path.read_text(errors="replace")[-1500:]
        raise RuntimeError(f"npm ci ({label}) failed with exit {completed.returncode}; see {log_path}:\n{tail}")
    return elapsed


def copy_tarballs(packages: dict, airlock: Server, nginx_root: Path) -> int:
    """Downloads every locked tarball from Airlock into nginx's root at the same path,
    checking each against the lockfile's integrity."""
    total = 0
    for path, entry in sorted(packages.items()):
        resolved = entry["resolved"]
        parsed = urllib.parse.urlparse(resolved)
        url = airlock.url + parsed.path.lstrip("/")
        response = http_get(url)
        if response.status != 200:
            raise RuntimeError(f"airlock GET {parsed.path}: HTTP {response.status} {response.body[:200]!r}")
        integrity = entry.get("integrity", "")
        for item in integrity.split():
            algorithm, _, digest = item.partition("-")
            if algorithm in ("sha512", "sha384", "sha256", "sha1"):
                actual = base64.b64encode(hashlib.new(algorithm, response.body).digest()).decode()
                if actual != digest:
                    raise RuntimeError(f"{path}: airlock's bytes do not match the lockfile's {algorithm}")
                break
        target = nginx_root / urllib.parse.unquote(parsed.path).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(response.body)
        total += len(response.body)
    return total


# ---------------------------------------------------------------------------
# Summary.
# ---------------------------------------------------------------------------


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value >= 1000:
        return f"{value / 1000:.2f}s"
    if value >= 10:
        return f"{value:.0f}ms"
    return f"{value:.2f}ms"


def fmt_size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.0f} KiB"
    return f"{n} B"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--airlock-bin", default=os.environ.get("AIRLOCK_BIN", str(REPO / "target" / "release" / "airlock")))
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output directory (default bench/out)")
    parser.add_argument("--upstream", default=os.environ.get("AIRLOCK_BENCH_UPSTREAM", "https://registry.npmjs.org"))
    parser.add_argument("--package", default="express", help="package whose packument and tarball are loaded")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--wrk-timeout", type=int, default=20, help="wrk per-request timeout, seconds")
    parser.add_argument("--npm-runs", type=int, default=3, help="timed npm ci runs per registry (default 3)")
    parser.add_argument("--skip-npm", action="store_true", help="skip the npm ci part")
    parser.add_argument("--skip-wrk", action="store_true", help="skip the wrk part")
    parser.add_argument("--compare", default=os.environ.get("AIRLOCK_BENCH_COMPARE"),
                        help="a second registry URL to run the same workloads against (env AIRLOCK_BENCH_COMPARE); "
                             "must be on 127.0.0.1")
    parser.add_argument("--verdaccio", action="store_true",
                        help="install verdaccio@6 into bench/out and use it as the second registry")
    parser.add_argument("--keep-verdaccio-storage", action="store_true")
    parser.add_argument("--data-dir", help="reuse this Airlock data directory (default: a fresh bench/out/airlock-data)")
    parser.add_argument("--packument-max-age",
                        help="Airlock's upstream.packument_max_age for the run (default: Airlock's own, 5m); "
                             "e.g. 1h keeps every timed npm ci inside the cache window")
    parser.add_argument("--airlock-log", default=os.environ.get("AIRLOCK_LOG", "warn"), help="AIRLOCK_LOG filter")
    args = parser.parse_args()

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "npm").mkdir(exist_ok=True)
    args.airlock_bin = Path(args.airlock_bin).resolve()
    for tool in ["wrk", "nginx"] + ([] if args.skip_npm else ["npm"]):
        if shutil.which(tool) is None:
            sys.exit(f"bench: {tool} not found on PATH (apt-get install -y wrk nginx npm)")
    if not args.airlock_bin.exists():
        sys.exit(f"bench: {args.airlock_bin} not found; build it with `cargo build --release -p airlock-server`")
    if args.compare and args.verdaccio:
        sys.exit("bench: use either --compare or --verdaccio")
    if args.compare and urllib.parse.urlparse(args.compare).hostname not in ("127.0.0.1", "localhost"):
        sys.exit("bench: --compare must be a loopback URL (load is only ever sent to 127.0.0.1)")

    started = _dt.datetime.now(_dt.timezone.utc)
    load_at_start = Path("/proc/loadavg").read_text().split()[:3]
    binary_time = _dt.datetime.fromtimestamp(args.airlock_bin.stat().st_mtime, _dt.timezone.utc)
    nginx_root = out / "nginx" / "root"
    if nginx_root.exists():
        shutil.rmtree(nginx_root)
    nginx_root.mkdir(parents=True)

    airlock = start_airlock(args, out)
    airlock.sample_rss("after start")
    sampler = RssSampler(airlock.proc.pid, out / "airlock-rss.csv")
    compare: Server | None = None
    if args.verdaccio:
        compare = start_verdaccio(args, out)
    elif args.compare:
        compare = Server("compare", args.compare.rstrip("/") + "/")

    lines: list[str] = []
    results: dict = {}
    workloads: list[Workload] = []
    nginx: Server | None = None

    # -- 1-4: wrk -----------------------------------------------------------
    if not args.skip_wrk:
        log(f"warming airlock with {args.package}")
        sampler.set_phase(f"warm-up ({args.package})")
        workloads = prepare_workloads(airlock, nginx_root, args.package)
        nginx = start_nginx(out)
        verify_nginx(nginx, workloads)
        if compare is not None:
            for workload in workloads:  # warm the second registry (and check it serves them)
                for _ in range(2):
                    response = http_get(compare.url + workload.path.lstrip("/"), workload.headers)
                if response.status != 200:
                    raise RuntimeError(f"{compare.name} {workload.key}: HTTP {response.status}")
        airlock.sample_rss("before load")
        sampler.set_phase("wrk load")
        if compare:
            compare.sample_rss("before load")
        for workload in workloads:
            targets = [("airlock", airlock, workload.path), ("nginx", nginx, workload.nginx_path)]
            if compare is not None:
                targets.append((compare.name, compare, workload.path))
            for name, server, path in targets:
                log(f"wrk {workload.key} -> {name} ({args.duration}s)")
                result = run_wrk(server.url + path.lstrip("/"), workload.headers, args)
                ensure_alive(server)
                results[(workload.key, name)] = result
                (out / f"wrk-{workload.key}-{name}.txt").write_text(result.raw + ("\n" + result.error if result.error else ""))
                if result.error or result.non_2xx or result.socket_errors:
                    log(f"  {name}: {result.error} non-2xx {result.non_2xx} socket errors {result.socket_errors}")
                log(f"  {name}: {result.rps:.0f} req/s p50 {fmt_ms(result.p50_ms)} p99 {fmt_ms(result.p99_ms)}")
                server.sample_rss(f"after {workload.key}")
                time.sleep(1)

    # -- 5: npm ci ----------------------------------------------------------
    npm_times: dict[str, list[float]] = {}
    npm_packages = 0
    npm_bytes = 0
    if not args.skip_npm:
        if nginx is None:
            (nginx_root / "__bench").mkdir(parents=True, exist_ok=True)
            (nginx_root / "__bench" / "ready").write_text("ok\n")
            nginx = start_nginx(out)
        project = out / "npm" / "project"
        create_project(project)
        log(f"generating the lockfile through airlock ({len(PROJECT_DEV_DEPENDENCIES)} dev dependencies)")
        sampler.set_phase("lockfile generation (cold packuments)")
        start = time.monotonic()
        cache = Path(tempfile.mkdtemp(prefix="npm-cache-", dir=out / "npm"))
        with open(out / "npm" / "npm-lock.log", "wb") as log_file:
            completed = subprocess.run(
                ["npm", "install", "--package-lock-only", "--registry", airlock.url, "--cache", str(cache),
                 "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=warn"],
                cwd=project, env=npm_env(airlock.url), stdout=log_file, stderr=subprocess.STDOUT, timeout=1800,
            )
        shutil.rmtree(cache, ignore_errors=True)
        if completed.returncode != 0:
            raise RuntimeError(f"npm install --package-lock-only failed; see {out / 'npm' / 'npm-lock.log'}")
        lock_seconds = time.monotonic() - start
        results["npm-lock"] = lock_seconds
        packages = lockfile_packages(project)
        npm_packages = len(packages)
        log(f"lockfile: {npm_packages} packages in {lock_seconds:.1f}s")
        not_airlock = [e["resolved"] for e in packages.values() if not e["resolved"].startswith(airlock.url)]
        if not_airlock:
            raise RuntimeError(f"{len(not_airlock)} resolved URLs do not point at airlock, e.g. {not_airlock[0]}")
        airlock.sample_rss("after lockfile")

        log("warming airlock's tarball cache with one npm ci")
        sampler.set_phase("first npm ci (cold tarballs)")
        results["approved"] = []
        try:
            warm_seconds = npm_ci(project, airlock.url, out, "airlock-warm")
            log(f"  warm-up npm ci through airlock (cold tarballs): {warm_seconds:.1f}s")
            results["npm-cold"] = f"{warm_seconds:.1f}s"
        except RuntimeError as error:
            first_error = next((line for line in str(error).splitlines() if "403" in line), str(error).splitlines()[0])
            log(f"  the first npm ci failed: {first_error[:300]}")
            results["npm-cold"] = f"failed ({first_error.split(' - ', 1)[-1][:160]})"
            log("  requesting every locked tarball, then approving what the checks held")
            results["approved"] = settle_lockfile(packages, airlock)
            warm_seconds = npm_ci(project, airlock.url, out, "airlock-warm2")
            log(f"  warm-up npm ci through airlock after approvals: {warm_seconds:.1f}s")
            results["npm-cold"] += f"; after approving {len(results['approved'])} held versions: {warm_seconds:.1f}s"
        airlock.sample_rss("after warm-up npm ci")

        log("copying the locked tarballs from airlock into nginx's root")
        sampler.set_phase("copying tarballs out (sequential GETs)")
        start = time.monotonic()
        npm_bytes = copy_tarballs(packages, airlock, nginx_root)
        results["copy-seconds"] = time.monotonic() - start
        log(f"  {len(packages)} tarballs in {results['copy-seconds']:.1f}s")
        nginx_project = out / "npm" / "project-nginx"
        rewrite_lockfile(project, nginx_project, airlock.url, nginx.url)
        projects = [("airlock", project, airlock.url), ("nginx", nginx_project, nginx.url)]
        if compare is not None:
            compare_project = out / "npm" / f"project-{compare.name}"
            rewrite_lockfile(project, compare_project, airlock.url, compare.url)
            log(f"warming {compare.name} with one npm ci")
            results["npm-cold-compare"] = npm_ci(compare_project, compare.url, out, f"{compare.name}-warm")
            log(f"  warm-up npm ci through {compare.name}: {results['npm-cold-compare']:.1f}s")
            projects.append((compare.name, compare_project, compare.url))

        sampler.set_phase("timed npm ci (warm)")
        for run in range(1, args.npm_runs + 1):
            for name, proj, registry in projects:  # interleaved, so drift hits all alike
                seconds = npm_ci(proj, registry, out, f"{name}-{run}")
                npm_times.setdefault(name, []).append(seconds)
                log(f"npm ci run {run} via {name}: {seconds:.1f}s")
        airlock.sample_rss("after timed npm ci")
        if compare:
            compare.sample_rss("after timed npm ci")

    sampler.set_phase("end")
    sampler.close()
    airlock.sample_rss("end")
    if compare:
        compare.sample_rss("end")
    peak_kib = proc_status_kib(airlock.proc.pid, "VmHWM")

    # -- Summary ------------------------------------------------------------
    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[:1]
    nginx_version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    git_rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines.append("Airlock benchmark summary")
    lines.append("=" * 25)
    lines.append(f"date: {started:%Y-%m-%d %H:%M} UTC   host: {os.cpu_count()} CPUs ({cpu}), {platform.release()}")
    lines.append(f"airlock: {args.airlock_bin} (built {binary_time:%H:%M} UTC, git HEAD {git_rev or '?'}), cooling period 0s, "
                 f"packument_max_age {args.packument_max_age or 'default'}, upstream {args.upstream}")
    lines.append(f"nginx: {nginx_version}, same bytes from files (gzip_static)   "
                 f"wrk: {(wrk_version or ['?'])[0].split(' Copyright')[0]}")
    if compare:
        lines.append(f"second registry: {compare.name} at {compare.url}")
    lines.append(f"machine load average (1, 5, 15 min): at start {' '.join(load_at_start)}, "
                 f"at end {' '.join(Path('/proc/loadavg').read_text().split()[:3])} (2 cores shared: expect noise)")
    lines.append(f"load: wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency, "
                 f"each workload run against airlock then nginx back-to-back")
    lines.append("")

    verdicts: list[str] = []
    if workloads:
        cname = compare.name if compare else None
        header = f"{'workload':<42} {'size':>9} | {'airlock req/s':>13} {'p50':>8} {'p99':>8} | {'nginx req/s':>11} {'p50':>8} {'p99':>8} | {'ratio':>5} {'target':>6}  ok"
        if cname:
            header += f" | {cname + ' req/s':>15} {'p50':>8} {'p99':>8} | {'airlock/' + cname:>16}"
        lines.append(header)
        lines.append("-" * len(header))
        for workload in workloads:
            a = results[(workload.key, "airlock")]
            n = results[(workload.key, "nginx")]
            ratio = a.rps / n.rps if n.rps else 0.0
            ok = ratio >= workload.target and not a.error and not a.non_2xx
            verdicts.append(f"{workload.key}: {'OK' if ok else 'MISSED'} ({ratio:.2f} of nginx, target >= {workload.target})")
            row = (f"{workload.label:<42} {fmt_size(workload.size):>9} | {a.rps:>13,.0f} {fmt_ms(a.p50_ms):>8} {fmt_ms(a.p99_ms):>8} | "
                   f"{n.rps:>11,.0f} {fmt_ms(n.p50_ms):>8} {fmt_ms(n.p99_ms):>8} | {ratio:>5.2f} {workload.target:>6.2f}  {'yes' if ok else 'NO'}")
            if cname:
                c = results[(workload.key, cname)]
                cratio = f"{a.rps / c.rps:,.1f}x" if c.rps else "n/a"
                row += f" | {c.rps:>15,.1f} {fmt_ms(c.p50_ms):>8} {fmt_ms(c.p99_ms):>8} | {cratio:>16}"
            lines.append(row)
            for name in ["airlock", "nginx"] + ([cname] if cname else []):
                r = results[(workload.key, name)]
                if r.error or r.non_2xx or r.socket_errors:
                    lines.append(f"    ! {name}: {r.error or ''} non-2xx {r.non_2xx}, socket errors: {r.socket_errors or 'none'}")
        lines.append("(ratio = airlock req/s / nginx req/s; targets from issue 2: tarballs and gzip packuments >= 0.5, identity >= 0.7)")
        lines.append("")

    lines.append("Memory, airlock VmRSS (MiB):")
    rss_values = [kib for _, kib in airlock.rss if kib is not None]
    lines.append("  " + ", ".join(f"{label} {mib(kib)}" for label, kib in airlock.rss))
    lines.append(f"  peak (VmHWM) {mib(peak_kib)}")
    lines.append("  max per phase (sampled every 200 ms, airlock-rss.csv): "
                 + ", ".join(f"{phase} {mib(kib)}" for phase, kib in sampler.max_by_phase.items() if phase != "end"))
    wrk_max = sampler.max_by_phase.get("wrk load")
    if wrk_max is not None:
        wrk_ok = wrk_max / 1024 < TARGET_RSS_MIB
        lines.append(f"  target under wrk load: under {TARGET_RSS_MIB:.0f} MiB and flat -> {'OK' if wrk_ok else 'MISSED'} "
                     f"(max {mib(wrk_max)} MiB; before load {mib(dict(airlock.rss).get('before load'))} MiB)")
        verdicts.append(f"memory under wrk load: {'OK' if wrk_ok else 'MISSED'} (max {mib(wrk_max)} MiB, target < {TARGET_RSS_MIB:.0f})")
    if rss_values and peak_kib is not None:
        overall_ok = peak_kib / 1024 < TARGET_RSS_MIB
        lines.append(f"  whole run (incl. cold lockfile resolution and npm ci): peak {mib(peak_kib)} MiB -> "
                     f"{'OK' if overall_ok else 'MISSED'}")
        verdicts.append(f"memory whole run: {'OK' if overall_ok else 'MISSED'} (peak {mib(peak_kib)} MiB)")
    if nginx and nginx.proc:
        lines.append(f"  nginx (master + workers) VmRSS at end: {mib(tree_rss_kib(nginx.proc.pid))} MiB")
    if compare and compare.rss:
        lines.append(f"  {compare.name} VmRSS: " + ", ".join(f"{label} {mib(kib)}" for label, kib in compare.rss))
    lines.append("")

    if npm_times:
        lines.append(f"npm ci: {npm_packages} packages ({fmt_size(npm_bytes)} of tarballs), empty npm cache per run "
                     f"(--prefer-online --ignore-scripts), {args.npm_runs} runs each, interleaved")
        lines.append(f"  lockfile generation through airlock (cold packuments): {results['npm-lock']:.1f}s; "
                     f"first npm ci through airlock (cold tarballs, checks in the request): {results['npm-cold']}")
        lines.append(f"  copying the {npm_packages} tarballs out of warm airlock, one GET at a time: {results['copy-seconds']:.1f}s "
                     f"({results['copy-seconds'] / max(npm_packages, 1) * 1000:.0f} ms each)")
        if results.get("approved"):
            lines.append(f"  versions of the lockfile held by Airlock's checks and approved by the benchmark "
                         f"({len(results['approved'])}):")
            for item in results["approved"]:
                lines.append(f"    {item['package']}@{item['version']}: {item['reason'][:220]}")
        if "npm-cold-compare" in results:
            lines.append(f"  first npm ci through {compare.name} (cold): {results['npm-cold-compare']:.1f}s")
        airlock_median = statistics.median(npm_times["airlock"])
        nginx_median = statistics.median(npm_times["nginx"])
        for name, times in npm_times.items():
            median = statistics.median(times)
            extra = ""
            if name != "airlock":
                extra = f"   airlock/{name} time ratio {airlock_median / median:.2f}"
            lines.append(f"  {name:<10} median {median:6.1f}s   runs " + ", ".join(f"{t:.1f}s" for t in times) + extra)
        time_ratio = airlock_median / nginx_median
        ok = time_ratio <= TARGET_NPM_CI_TIME_RATIO
        lines.append(f"  target: as fast as nginx (airlock/nginx time <= {TARGET_NPM_CI_TIME_RATIO:.2f}, 10 % for noise) -> "
                     f"{'OK' if ok else 'MISSED'} ({time_ratio:.2f})")
        verdicts.append(f"npm ci: {'OK' if ok else 'MISSED'} (airlock/nginx time {time_ratio:.2f})")
        lines.append("")

    lines.append("Verdicts: " + "; ".join(verdicts))
    airlock_log = re.sub(r"\x1b\[[0-9;]*m", "", (out / "airlock.log").read_text(errors="replace"))
    errors = [line for line in airlock_log.splitlines()
              if re.search(r"\b(ERROR|WARN)\b", line) or "panicked" in line]
    lines.append(f"airlock log ({args.airlock_log}): {len(errors)} WARN/ERROR lines in {out / 'airlock.log'}")
    for line in errors[:5]:
        lines.append("  " + line[:200])

    summary = "\n".join(lines) + "\n"
    (out / "summary.txt").write_text(summary)
    print(summary)
    log(f"summary written to {out / 'summary.txt'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as error:
        print(f"bench: {error}", file=sys.stderr)
        sys.exit(1)

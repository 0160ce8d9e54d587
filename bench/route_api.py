"""The route API: how fast controllers can add routes, bgpd next to GoBGP.

Two measurements, each repeated (median quoted):

- **socket**: N ``route_add`` requests written to one control-socket connection (newline-
  delimited JSON, pipelined), then N ``route_del``; the run ends when every reply is in and
  ``route_list`` counts N (then 0) routes. The daemon's CPU seconds are read from /proc.
- **cli**: M routes added one process at a time, ``bgpd route add P`` next to GoBGP's
  ``gobgp global rib add -a ipv4 P nexthop 192.0.2.1`` against a running ``gobgpd`` (what an
  operator or a shell-script controller does); the ratio is GoBGP's rate over bgpd's.

Both daemons have no neighbors: this is the API and the RIB, not BGP. Usage::

    .venv/bin/python bench/route_api.py [--routes 20000] [--calls 40] [--repeat 3]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measure, print_rate_table, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BGPD = [sys.executable, "-m", "bgpd.cli.main"]


def prefixes(n: int, base: str = "10.128.0.0") -> list[str]:
    start = int(ipaddress.IPv4Address(base))
    return [f"{ipaddress.IPv4Address(start + (i << 8))}/24" for i in range(n)]


def daemon_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Bgpd:
    def __init__(self, tmp: Path) -> None:
        self.sock = tmp / "bgpd.sock"
        cfg = tmp / "bgpd.yaml"
        cfg.write_text(
            f"router_id: 10.0.0.1\nasn: 65000\ncontrol_socket: {self.sock}\n", encoding="utf-8"
        )
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [*BGPD, "run", "-c", str(cfg), "--log-level", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while not self.sock.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("bgpd did not start")
            time.sleep(0.05)
        self.conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.conn.connect(str(self.sock))
        self.reader = self.conn.makefile("rb")

    def pipeline(self, requests: list[dict]) -> list[dict]:
        data = b"".join(json.dumps(r).encode() + b"\n" for r in requests)
        self.conn.sendall(data)
        return [json.loads(self.reader.readline()) for _ in requests]

    def stop(self) -> None:
        self.conn.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(20)


class Gobgpd:
    def __init__(self, tmp: Path) -> None:
        self.api = tmp / "gobgp.sock"
        cfg = tmp / "gobgpd.toml"
        cfg.write_text('[global.config]\n  as = 65000\n  router-id = "10.0.0.2"\n  port = -1\n')
        self.proc = subprocess.Popen(
            ["gobgpd", "-f", str(cfg), "-t", "toml", "-p", "-l", "warn"]
            + ["--api-hosts", f"unix://{self.api}", "--pprof-disable"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while subprocess.run(self.cmd("global"), capture_output=True).returncode != 0:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("gobgpd did not start")
            time.sleep(0.1)

    def cmd(self, *args: str) -> list[str]:
        return ["gobgp", "--target", f"unix://{self.api}", *args]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(20)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--routes", type=int, default=20000)
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ra-bench-"))
    results = []
    bgpd = Bgpd(tmp)
    try:
        nets = prefixes(args.routes)
        adds = [
            {
                "command": "route_add",
                "args": {"prefix": p, "owner": "bench", "communities": ["65000:1"], "med": 5},
            }
            for p in nets
        ]
        dels = [{"command": "route_del", "args": {"prefix": p, "owner": "bench"}} for p in nets]
        cpu: dict = {"add": [], "del": []}

        def run(reqs, kind, expect):
            c0 = daemon_cpu(bgpd.proc.pid)
            replies = bgpd.pipeline(reqs)
            assert all(r["ok"] for r in replies), [r for r in replies if not r["ok"]][:3]
            (listed,) = bgpd.pipeline([{"command": "route_list", "args": {}}])
            assert len(listed["result"]["routes"]) == expect
            cpu[kind].append(daemon_cpu(bgpd.proc.pid) - c0)
            return len(reqs)

        for _ in range(args.repeat):
            m_add = measure(
                "bgpd socket route_add",
                lambda: run(adds, "add", args.routes),
                repeat=1,
                unit="routes",
            )
            m_del = measure(
                "bgpd socket route_del",
                lambda: run(dels, "del", 0),
                repeat=1,
                unit="routes",
            )
            if results:
                results[0].wall += m_add.wall
                results[0].cpu += m_add.cpu
                results[1].wall += m_del.wall
                results[1].cpu += m_del.cpu
            else:
                results += [m_add, m_del]
        results[0].extra["daemon_cpu_s"] = cpu["add"]
        results[1].extra["daemon_cpu_s"] = cpu["del"]

        calls = prefixes(args.calls, "10.200.0.0")
        env = dict(os.environ, PYTHONPATH=str(ROOT))

        def cli_bgpd():
            for p in calls:
                subprocess.run(
                    [*BGPD, "route", "add", p, "--owner", "cli", "-s", str(bgpd.sock)],
                    check=True,
                    capture_output=True,
                    env=env,
                )
            subprocess.run(
                [*BGPD, "route", "list", "--owner", "cli", "-s", str(bgpd.sock)],
                check=True,
                capture_output=True,
                env=env,
            )
            return len(calls)

        results.append(
            measure(
                "bgpd route add (a process per route)",
                cli_bgpd,
                repeat=args.repeat,
                unit="routes",
                baseline="gobgp global rib add" if shutil.which("gobgpd") else None,
            )
        )
    finally:
        bgpd.stop()
    if shutil.which("gobgpd") and shutil.which("gobgp"):
        gob = Gobgpd(tmp)
        try:

            def cli_gobgp():
                for p in calls:
                    subprocess.run(
                        gob.cmd("global", "rib", "add", "-a", "ipv4", p, "nexthop", "192.0.2.1"),
                        check=True,
                        capture_output=True,
                    )
                return len(calls)

            results.append(
                measure("gobgp global rib add", cli_gobgp, repeat=args.repeat, unit="routes")
            )
        finally:
            gob.stop()
    else:
        print("gobgpd not installed: no GoBGP comparison (apt-get install gobgpd)", file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)
    print_rate_table(results, per=1000, unit="routes", ratio="gobgp is")
    for m in results[:2]:
        cpu_s = sorted(m.extra["daemon_cpu_s"])[len(m.extra["daemon_cpu_s"]) // 2]
        print(f"{m.name}: bgpd's own CPU {cpu_s:.2f} s for {m.units} routes (median)")
    path = write_results("route_api", {"measurements": [m.to_dict() for m in results]})
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The BIRD control socket on a large table: bgpd-bird's answers and BIRD 1.6.8's.

calico-node's probes ask ``show status`` and ``show protocols`` every few seconds; on a node
with a big table they must not cost a walk of it. This loads ``--routes`` static blackhole
/32s (a million by default) into a BirdSpeaker in-process (not started: the snapshot and the
formatters are what is measured) and times, through bgpd/birdctl's command engine:

- ``show status``, ``show protocols``, ``show protocols all`` (one pass over the table for
  the route counts, made on first use), ``show route PREFIX``, ``show route for ADDR``;
- ``show route count`` and ``show route`` (every route made and formatted).

With ``--bird`` (BIRD 1.6.8 from tools/bird16.sh) BIRD runs the same routes as one static
protocol (no kernel, no BGP) and the same commands go through its socket, timed from send
to the last line of the reply.

Run: ``.venv/bin/python bench/bird_ctl.py [--routes N] [--repeat K] [--bird] [--save]``.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

from bgpd.birdctl.engine import BirdCli, Session  # noqa: E402
from bgpd.kernel import Kernel, KernelSettings  # noqa: E402
from bgpd.kernel.routes import RTN_BLACKHOLE, HostRoute  # noqa: E402
from bgpd.speaker.birdrun import BirdRunSetup, BirdSpeaker, Extras  # noqa: E402
from bgpd.wire import AttrSet, intern  # noqa: E402
from bgpd.wire import prefix as pfx  # noqa: E402
from bgpd.wire.constants import IPV4_UNICAST, ORIGIN_IGP  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIRD16 = Path(os.environ.get("BGPD_BIRD16_DIR", ROOT / ".cache" / "bird16")) / "usr/sbin"
HEAD = """\
router id 192.0.2.1;
protocol device { }
protocol bgp Mesh_192_0_2_2 {
  local as 64512;
  neighbor 192.0.2.2 as 64512;
  import all;
  export all;
}
"""


def addresses(n: int):
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    for i in range(n):
        yield ipaddress.IPv4Address(base + i)


def commands(n: int) -> list[str]:
    mid = ipaddress.IPv4Address(int(ipaddress.IPv4Address("10.0.0.0")) + n // 2)
    return [
        "show status",
        "show protocols",
        "show protocols all",
        f"show route {mid}/32",
        f"show route for {mid}",
        "show route count",
        "show route",
    ]


def ours(n: int, repeat: int, tmp: Path) -> dict:
    cfg = tmp / "bird.cfg"
    cfg.write_text(HEAD + "protocol static { }\n")
    loop = asyncio.new_event_loop()
    sp = BirdSpeaker(BirdRunSetup(str(cfg), False, Extras(), str(tmp / "x.ctl")), loop)
    sp.kernel = Kernel(sp.rde.rib.loc, KernelSettings())  # not started: no netlink
    src = sp.kernel.host.static
    attrs = intern(AttrSet(origin=ORIGIN_IGP, as_path=()))
    t0 = time.perf_counter()
    prefixes = []
    routes = src.routes[IPV4_UNICAST]
    hr = HostRoute(RTN_BLACKHOLE)
    for a in addresses(n):
        p = pfx.from_network(ipaddress.IPv4Network(a))
        prefixes.append(p)
        routes[p] = hr
    sp.rde.announce(src, IPV4_UNICAST, prefixes, attrs)
    sp.rde.commit()
    load = time.perf_counter() - t0
    cli = BirdCli(sp.status.snapshot)
    out = {"load_s": load, "rss_bytes": common.current_rss_bytes(), "commands": {}}
    for cmd in commands(n):
        times = []
        lines = 0
        for _ in range(1 if cmd == "show route" else repeat):
            t = time.perf_counter()
            reply = loop.run_until_complete(cli.execute(cmd, Session()))
            times.append(time.perf_counter() - t)
            lines = len(reply)
        times.sort()
        out["commands"][cmd] = {"seconds": times[len(times) // 2], "lines": lines}
    loop.close()
    return out


def _ask(path: str, cmd: str) -> tuple[float, int]:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
        buf = b""
        while b"\n" not in buf:
            buf += s.recv(4096)
        t = time.perf_counter()
        s.sendall(cmd.encode() + b"\n")
        buf = b""
        lines = 0
        while True:
            data = s.recv(1 << 20)
            if not data:
                break
            buf += data
            *done, buf = buf.split(b"\n")
            for ln in done:
                lines += 1
                if len(ln) > 4 and ln[:4].isdigit() and ln[4:5] == b" ":
                    return time.perf_counter() - t, lines
    return time.perf_counter() - t, lines


def birds(n: int, repeat: int, tmp: Path) -> dict | None:
    if not (BIRD16 / "bird").exists():
        print("BIRD 1.6.8 not found (tools/bird16.sh); --bird skipped")
        return None
    cfg = tmp / "bird16.cfg"
    with open(cfg, "w") as f:
        f.write(HEAD + "protocol static {\n")
        for a in addresses(n):
            f.write(f"  route {a}/32 blackhole;\n")
        f.write("}\n")
    sock, pid = str(tmp / "b.ctl"), tmp / "b.pid"
    t0 = time.perf_counter()
    subprocess.run([str(BIRD16 / "bird"), "-c", str(cfg), "-s", sock, "-P", str(pid)], check=True)
    try:
        while True:  # loaded when the count is complete
            try:
                _t, _l = _ask(sock, "show route count")
                break
            except OSError:
                time.sleep(0.2)
        load = time.perf_counter() - t0
        out = {"load_s": load, "commands": {}}
        for cmd in commands(n):
            times = []
            lines = 0
            for _ in range(1 if cmd == "show route" else repeat):
                t, lines = _ask(sock, cmd)
                times.append(t)
            times.sort()
            out["commands"][cmd] = {"seconds": times[len(times) // 2], "lines": lines}
        rss = Path(f"/proc/{int(pid.read_text())}/status").read_text()
        out["rss_bytes"] = (
            int(next(x for x in rss.splitlines() if x.startswith("VmRSS")).split()[1]) * 1024
        )
        return out
    finally:
        try:
            os.kill(int(pid.read_text()), 15)
        except (OSError, ValueError):
            pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--routes", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--bird", action="store_true", help="BIRD 1.6.8 on the same routes")
    ap.add_argument("--save", action="store_true")
    a = ap.parse_args()
    common.warn_if_busy()
    with tempfile.TemporaryDirectory(prefix="br-bench-") as d:
        tmp = Path(d)
        mine = ours(a.routes, a.repeat, tmp)
        theirs = birds(a.routes, a.repeat, tmp) if a.bird else None
    rows = []
    for cmd, m in mine["commands"].items():
        b = theirs["commands"][cmd] if theirs else None
        rows.append(
            [
                cmd,
                common.fmt_seconds(m["seconds"]),
                common.fmt_seconds(b["seconds"]) if b else "-",
                common.fmt_ratio(m["seconds"] / b["seconds"]) if b and b["seconds"] else "-",
                str(m["lines"]),
            ]
        )
    print(
        f"{a.routes} routes; bgpd loaded in {mine['load_s']:.1f} s, RSS "
        f"{common.fmt_bytes(mine['rss_bytes'])}"
        + (
            f"; BIRD loaded in {theirs['load_s']:.1f} s, RSS {common.fmt_bytes(theirs['rss_bytes'])}"
            if theirs
            else ""
        )
    )
    common.print_table(["command", "bgpd", "BIRD 1.6.8", "bgpd/BIRD", "lines"], rows)
    if a.save:
        path = common.write_results(
            "bird_ctl",
            {"routes": a.routes, "bgpd": mine, "bird": theirs, "machine": common.machine_info()},
        )
        print(f"saved {path}")


if __name__ == "__main__":
    main()

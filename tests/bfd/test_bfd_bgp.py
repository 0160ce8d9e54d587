"""BFD taking BGP down: bgpd (``bgpd run`` in namespace a) and BIRD 2 (namespace b, ``protocol
bgp`` with ``bfd on`` and ``protocol bfd``) over the veth of :class:`bfd_peers.Link`.

The path is cut silently (an nftables drop in b) and the test measures how long until bgpd's
BGP session is down and the route it learned from BIRD is gone from a's kernel table: with
BFD at 300 ms x 3, and with the hold timer alone (9 s) for comparison. The figures are listed
at the end of the run ("BFD measurements").
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))
import bfd_peers  # noqa: E402
import bgpd_proc  # noqa: E402
from bfd_peers import BIRD, BIRDC, cut, heal, require_binary, wait_until, workdir  # noqa: E402

ROUTE = "10.99.0.0/24"
BGPD_AS, BIRD_AS = 65001, 65002
HOLD = 9


class NsBgpd(bgpd_proc.BgpdProcess):
    def __init__(self, ns: str, **kw) -> None:
        self.ns = ns
        super().__init__(**kw)

    def command(self) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *super().command()]

    def neighbor(self, address: str) -> dict:
        return self.request("show_neighbors", {"address": address})["neighbors"][0]


class BirdBgp(bfd_peers._Proc):
    """BIRD 2: a BGP session to bgpd (``bfd on`` when ``bfd``), announcing :data:`ROUTE`."""

    def __init__(self, ns: str, ifname: str, local: str, peer: str, bfd: bool) -> None:
        self.ns, self.ifname, self.local, self.peer, self.bfd = ns, ifname, local, peer, bfd
        self.dir = workdir("bird")
        self.sock = self.dir / "bird.ctl"

    def config(self) -> str:
        bfd = "bfd on;" if self.bfd else ""
        return f"""
router id {self.local};
log "{self.dir}/bird.log" all;
protocol device {{ scan time 10; }}
protocol bfd {{
  interface "{self.ifname}" {{ min rx interval 300 ms; min tx interval 300 ms; multiplier 3; }};
}}
protocol static {{ ipv4; route {ROUTE} blackhole; }}
protocol bgp bgpd {{
  local {self.local} as {BIRD_AS};
  neighbor {self.peer} as {BGPD_AS};
  hold time {HOLD}; keepalive time 3; connect retry time 1; error wait time 1, 2;
  {bfd}
  ipv4 {{ import all; export all; next hop self; }};
}}
"""

    def start(self) -> BirdBgp:
        conf = self.dir / "bird.conf"
        conf.write_text(self.config())
        cmd = ["ip", "netns", "exec", self.ns, BIRD, "-f", "-c", str(conf), "-s", str(self.sock)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.sock.exists() or self.proc.poll() is not None, 10, "BIRD")
        assert self.proc.poll() is None, (self.dir / "bird.log").read_text()
        return self

    def show(self, *cmd: str) -> str:
        return subprocess.run(
            [BIRDC, "-s", str(self.sock), *cmd], capture_output=True, text=True, timeout=10
        ).stdout

    def close(self) -> None:
        self.kill()
        if not bfd_peers.keep_dirs():
            shutil.rmtree(self.dir, ignore_errors=True)

    def tail(self) -> str:
        p = self.dir / "bird.log"
        return p.read_text()[-3000:] if p.exists() else ""


def kernel_has_route(ns: str) -> bool:
    out = subprocess.run(
        ["ip", "-n", ns, "route", "show", ROUTE], capture_output=True, text=True
    ).stdout
    return ROUTE in out


def run_scenario(link, procs, tmp_path, *, bfd: dict | None) -> tuple[float, float]:
    """Bring the session up, cut the path; (seconds until BGP down, until the route left
    a's kernel table)."""
    require_binary(BIRD, "bird2")
    (a4, b4) = link.v4(1)
    neighbor = {"address": b4, "asn": BIRD_AS, "hold_time": HOLD, "connect_retry": 1}
    if bfd is not None:
        neighbor["bfd"] = bfd
    d = NsBgpd(
        link.a,
        name="bfdbgp",
        address=a4,
        asn=BGPD_AS,
        neighbors=[neighbor],
        extra={"kernel": {"table": "main", "protocol": "bgp"}},
        workdir=tmp_path / "bgpd",
    )
    bird = BirdBgp(link.b, link.b_if, b4, a4, bfd is not None)
    procs.append(bird)
    bird.start()
    procs.append(type("Stop", (), {"close": lambda self: d.cleanup()})())
    d.start()
    wait_until(lambda: d.neighbor(b4)["state"] == "Established", 30, "BGP Established")
    wait_until(lambda: kernel_has_route(link.a), 15, "the route in a's kernel table")
    if bfd is not None:
        wait_until(
            lambda: any(s["state"] == "Up" for s in d.request("show_bfd")["sessions"]),
            10,
            "BFD Up",
        )
    time.sleep(1)
    t0 = time.monotonic()
    cut(link.b, link.b_if)
    t_down = t_route = None
    deadline = t0 + HOLD + 15
    while time.monotonic() < deadline and (t_down is None or t_route is None):
        now = time.monotonic()
        if t_down is None and d.neighbor(b4)["state"] != "Established":
            t_down = now - t0
        if t_route is None and not kernel_has_route(link.a):
            t_route = now - t0
        time.sleep(0.02)
    assert t_down is not None and t_route is not None, (t_down, t_route, d.log_tail())
    info = d.neighbor(b4)
    if bfd is not None:
        assert "BFD Down" in (info["last_error"] or ""), info["last_error"]
        # the path comes back: BFD Up again, then the BGP session and the route
        heal(link.b)
        wait_until(lambda: d.neighbor(b4)["state"] == "Established", 30, "BGP back")
        wait_until(lambda: kernel_has_route(link.a), 15, "the route back")
    return t_down, t_route


def test_bfd_takes_bgp_down_within_a_second(link, procs, tmp_path, measure):
    t_down, t_route = run_scenario(
        link, procs, tmp_path, bfd={"min_tx": "300ms", "min_rx": "300ms", "multiplier": 3}
    )
    measure("bfd_bgp", "BFD 300ms x 3: BGP session down after the cut", t_down)
    measure("bfd_bgp", "BFD 300ms x 3: kernel route withdrawn after the cut", t_route)
    # 0.9 s of detection time, plus scheduling noise on a shared machine
    assert t_down < 2.5 and t_route < 2.5, (t_down, t_route)


def test_hold_timer_alone_for_comparison(link, procs, tmp_path, measure):
    t_down, t_route = run_scenario(link, procs, tmp_path, bfd=None)
    measure("bfd_bgp", f"hold timer alone ({HOLD} s): BGP session down", t_down)
    measure("bfd_bgp", f"hold timer alone ({HOLD} s): kernel route withdrawn", t_route)
    assert t_down > 3.0, "without BFD only the hold timer notices a silent cut"


@pytest.mark.parametrize("strict", [True])
def test_strict_keeps_bgp_down_until_bfd_is_up(link, procs, tmp_path, strict):
    """``strict``: no BGP session while BFD is not Up; BFD's failure ends the session with
    Cease 6/10 and BGP comes back only once BFD is Up again."""
    require_binary(BIRD, "bird2")
    (a4, b4) = link.v4(1)
    d = NsBgpd(
        link.a,
        name="bfdstrict",
        address=a4,
        asn=BGPD_AS,
        neighbors=[
            {
                "address": b4,
                "asn": BIRD_AS,
                "connect_retry": 1,
                "bfd": {"min_tx": "300ms", "min_rx": "300ms", "strict": strict},
            }
        ],
        workdir=tmp_path / "bgpd",
    )
    bird = BirdBgp(link.b, link.b_if, b4, a4, bfd=False)  # BGP yes, but no BFD for it
    procs.append(bird)
    bird.start()
    procs.append(type("Stop", (), {"close": lambda self: d.cleanup()})())
    d.start()
    time.sleep(4)  # BIRD would connect: bgpd must not bring the session up
    assert d.neighbor(b4)["state"] != "Established"
    assert "Established" not in bird.show("show", "protocols", "bgpd")
    # BIRD with BFD for the session: BFD comes Up first, then bgpd lets BGP up
    bird.close()
    bird2 = BirdBgp(link.b, link.b_if, b4, a4, bfd=True)
    procs.append(bird2)
    bird2.start()
    wait_until(lambda: d.neighbor(b4)["state"] == "Established", 30, "BGP after BFD Up")
    (bfd,) = d.request("show_bfd")["sessions"]
    assert bfd["state"] == "Up" and bfd["neighbor"] == b4
    assert bfd["up_for_s"] >= d.neighbor(b4)["uptime"] - 0.05  # BFD was Up first
    # a cut: BFD Down ends BGP, which stays down until BFD is Up again
    cut(link.b, link.b_if)
    wait_until(lambda: d.neighbor(b4)["state"] != "Established", 5, "BGP down")
    assert "BFD Down" in d.neighbor(b4)["last_error"]
    time.sleep(2)
    assert d.neighbor(b4)["state"] == "Idle", "strict: no reconnect while BFD is down"
    heal(link.b)
    wait_until(lambda: d.neighbor(b4)["state"] == "Established", 30, "BGP back after BFD")
    snap = d.request("show_bfd")
    assert snap["bgp_down_events"] == 1

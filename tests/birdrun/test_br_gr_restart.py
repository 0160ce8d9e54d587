"""``bgpd-bird -R`` across a restart loses no packet (as ``bird -R`` under Calico's runit).

Topology (tests/gr Topology, in namespaces named ``br...``): H1 - R1 - R2 - H2. R1 runs
bgpd-bird on a Calico-shaped BIRD file (kernel protocol with ``persist`` and ``graceful
restart``, device, direct, BGP with ``graceful restart``); R2 runs BIRD 2 with graceful
restart (tests/gr NsBird). A ping every 10 ms from H1 to H2 crosses both routers on routes
learnt over BGP. R1's daemon is stopped (SIGTERM, as ``sv restart``; or SIGKILL, a crash)
and started again with ``-R``: its kernel routes stayed (``persist``), R2 kept R1's routes as
stale, the new run adopts its kernel routes and holds the kernel protocol until the
recovery ends. A second BGP protocol whose peer never comes holds the recovery for
``graceful restart wait`` (8 s), during which ``show status`` says 0024 with BIRD's lines;
then the kernel protocol syncs and sweeps. No echo is lost, and neither kernel sees the
routes between the host networks change.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import br_lab as lab
import pytest
from bc_helpers import query

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gr"))
from gr_helpers import NsBird, Pinger, RouteMonitor, Topology, wait_sync  # noqa: E402
from kernel_helpers import Namespaces, Netns, _in_thread  # noqa: E402
from pyroute2 import netns as pr2netns  # noqa: E402

GR_WAIT = 8
R1_NET, R2_NET = "10.1.1.0/24", "10.2.2.0/24"
R2_ROUTE = "10.2.2.0/24 via 10.0.12.2 dev r2 proto bird"

R1_CFG = f"""\
router id 10.0.12.1;
graceful restart wait {GR_WAIT};

protocol kernel {{
  learn;
  persist;
  scan time 2;
  import all;
  export filter {{ if source = RTS_BGP then accept; reject; }};
  graceful restart;
  merge paths on;
}}
protocol device {{ scan time 2; }}
protocol direct {{ interface "h1"; }}

template bgp bgp_template {{
  local as 65001;
  graceful restart;
  connect delay time 1;
  connect retry time 2;
  error wait time 1,5;
  hold time 9;
}}
protocol bgp Global_10_0_12_2 from bgp_template {{
  neighbor 10.0.12.2 as 65002;
  import all;
  export filter {{ if net = {R1_NET} then accept; reject; }};
}}
protocol bgp Global_10_0_12_9 from bgp_template {{
  description "a peer that never comes: it holds the recovery";
  neighbor 10.0.12.9 as 65009;
  passive on;
  import all;
  export none;
}}
"""

_names = itertools.count(1)


class BrNamespaces(Namespaces):
    """tests/kernel's namespace factory, with names of our own (``br<pid>n<k>``)."""

    def __call__(self) -> Netns:
        name = f"br{os.getpid() % 10000}n{next(_names)}"
        _in_thread(pr2netns.create, name)
        ns = Netns(name)
        self.made.append(ns)
        ns.up("lo")
        return ns


class BgpdBird:
    """bgpd-bird in R1 (``ip netns exec`` execs it: the pid is the daemon's)."""

    def __init__(self, ns: Netns, workdir: Path) -> None:
        self.ns = ns
        self.dir = workdir
        self.cfg = workdir / "bird.cfg"
        self.cfg.write_text(R1_CFG)
        self.sock = workdir / "bird.ctl"
        self.log = workdir / "bgpd.log"
        self.proc: subprocess.Popen | None = None

    def start(self, restart: bool) -> None:
        with open(self.log, "a") as f:
            argv = ["ip", "netns", "exec", self.ns.name, lab.BGPD_BIRD, "-d"]
            argv += ["-R"] if restart else []
            argv += ["-c", str(self.cfg), "-s", str(self.sock)]
            self.proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)

    def stop(self, sig: int) -> int | None:
        p = self.proc
        if p is None or p.poll() is not None:
            return p.returncode if p is not None else None
        p.send_signal(sig)
        try:
            return p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            return p.wait(5)

    def status(self) -> list[str]:
        return query(self.sock, "show status")[1]


@pytest.fixture
def rig(tmp_path):
    lab.require_lab()
    made = BrNamespaces()
    daemons: list = []
    try:
        topo = Topology.build(made)
        work = lab.make_dir("br-gr-")
        r2 = NsBird(
            topo.r2,
            name="R2",
            address="10.0.12.2",
            asn=65002,
            neighbors=[{"address": "10.0.12.1", "asn": 65001}],
            host_interfaces=["h2"],
            workdir=work / "r2",
        )
        daemons.append(r2)
        r2.start()
        r1 = BgpdBird(topo.r1, work)
        daemons.append(r1)
        yield topo, r1, r2, work
    finally:
        for d in reversed(daemons):
            try:
                d.stop(signal.SIGTERM) if isinstance(d, BgpdBird) else d.stop()
            except Exception as e:  # noqa: BLE001 - keep stopping the others
                sys.stderr.write(f"stopping {d!r}: {e}\n")
        made.close()
        if "work" in locals():
            lab.remove_dir(work)


def route_changes(mon) -> list[str]:
    return [ln for ln in mon.lines() if R1_NET in ln or R2_NET in ln]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_restart_with_R_loses_no_packet(rig, tmp_path, sig):
    topo, r1, r2, work = rig
    r1.start(restart=True)  # Calico always passes -R; nothing to recover the first time
    wait_sync(lambda: topo.r1.routes(R2_NET) == [R2_ROUTE], 30, what="R1 installs R2's network")
    wait_sync(lambda: topo.r2.routes(R1_NET) != [], 30, what="R2 installs R1's network")
    wait_sync(lambda: not any(x.startswith("0024") for x in r1.status()), 30, what="recovery 1")
    r2_route = topo.r2.routes(R1_NET)

    monitors = [RouteMonitor(ns, tmp_path) for ns in (topo.r1, topo.r2)]
    ping = Pinger(topo.h1, "10.2.2.2", tmp_path / "ping.txt")
    statuses: list[list[str]] = []
    try:
        ping.wait_replies(50)
        status = r1.stop(sig)
        if sig == signal.SIGTERM:
            assert status == 0, "SIGTERM: BIRD exits 0"
        time.sleep(2.0)
        assert topo.r1.routes(R2_NET) == [R2_ROUTE], "persist: our kernel route stays"
        assert topo.r2.routes(R1_NET) == r2_route, "R2 keeps our route (graceful restart)"
        r1.start(restart=True)
        wait_sync(r1.sock.exists, 20, what="the control socket")
        # the passive peer that never comes holds the recovery for graceful restart wait
        deadline = time.monotonic() + GR_WAIT + 15
        while time.monotonic() < deadline:
            try:
                statuses.append(r1.status())
            except OSError:
                pass
            seen = any(any(x.startswith("0024") for x in s) for s in statuses)
            if seen and not any(x.startswith("0024") for x in statuses[-1]):
                break
            time.sleep(0.2)
        time.sleep(2.5)  # the kernel protocol's sync after the recovery is behind us
        assert topo.r1.routes(R2_NET) == [R2_ROUTE]
        result = ping.stop()
    finally:
        ping.kill()
        for m in monitors:
            m.stop()
    print(f"\nbgpd-bird -R after {signal.Signals(sig).name}: {result}")
    recovering = [s for s in statuses if any(x.startswith("0024") for x in s)]
    assert recovering, "show status never showed the recovery"
    lines = recovering[0]
    assert "0024-Graceful restart recovery in progress" in lines
    assert any(x.startswith("   Wait timer is ") and x.endswith(f"/{GR_WAIT}") for x in lines)
    # both BGP protocols hold it at first; R2's End-of-RIB releases its lock, the passive
    # peer's lock is held until the wait timer runs out
    waits = [next(x for x in s if "Waiting for" in x) for s in recovering]
    assert waits[0] in (
        "   Waiting for 2 protocols to recover",
        "   Waiting for 1 protocols to recover",
    )
    assert waits[-1] == "   Waiting for 1 protocols to recover"
    assert not any(x.startswith("0024") for x in statuses[-1]), "the recovery ended"
    assert result.transmitted > 500
    assert result.lost == [], f"lost {len(result.lost)} packets: {result}"
    for m in monitors:
        assert route_changes(m) == [], f"routes changed in {m.ns.name}"

"""``bgpd-bird -R`` across a restart, as ``bird -R`` under Calico's runit.

Topology (tests/gr Topology, in namespaces named ``br...``): H1 - R1 - R2 - H2. R1 runs
bgpd-bird (or BIRD 1.6.8) on a Calico-shaped BIRD file (kernel protocol with ``persist``
and ``graceful restart``, device, direct, BGP with ``graceful restart``); R2 runs BIRD 2
with graceful restart (tests/gr NsBird). A ping every 10 ms from H1 to H2 crosses both
routers on routes learnt over BGP.

* Lossless: R1's daemon stopped with ``birdcl graceful restart`` (BIRD 2.0's command: the
  sessions end without a NOTIFICATION, R2 keeps R1's routes as stale) or SIGKILL (a
  crash), started again with ``-R``: its kernel routes stayed (``persist``), the new run
  adopts them and holds the kernel protocol until the recovery ends. A second BGP protocol
  whose peer never comes holds the recovery for ``graceful restart wait`` (GR_WAIT, 5 s), during
  which ``show status`` says 0024 with BIRD's lines; then the kernel protocol syncs and
  sweeps. No echo is lost, and neither kernel sees the routes between the host networks
  change.
* SIGTERM (``sv restart``), as BIRD 1.6.8: Cease to R2, which drops R1's routes at once;
  the echoes are lost until R1 is back and its recovery over. Measured for BIRD 1.6.8 and
  bgpd-bird in turn on the same topology: bgpd-bird may lose no more than BIRD does, plus
  the time its start takes longer (a Python process, SIGTERM_MARGIN).
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

GR_WAIT = 5
# The SIGTERM comparison's recovery: each of its four starts waits it out, and what it
# compares (Cease, the drop at R2, the loss of either daemon) does not depend on its length
SIGTERM_GR_WAIT = 3
R1_NET, R2_NET = "10.1.1.0/24", "10.2.2.0/24"
R2_ROUTE = "10.2.2.0/24 via 10.0.12.2 dev r2 proto bird"

R1_CFG = """\
router id 10.0.12.1;
graceful restart wait {gr_wait};

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


class R1Daemon:
    """The daemon in R1, bgpd-bird or BIRD 1.6.8 (``bird16``: its directory), in the
    foreground (``ip netns exec`` execs it: the pid is the daemon's)."""

    def __init__(
        self, ns: Netns, workdir: Path, bird16: Path | None = None, gr_wait: int = GR_WAIT
    ) -> None:
        self.ns = ns
        self.dir = workdir
        self.bird16 = bird16
        self.cfg = workdir / "bird.cfg"
        self.cfg.write_text(R1_CFG.format(gr_wait=gr_wait, R1_NET=R1_NET))
        self.sock = workdir / "bird.ctl"
        self.log = workdir / "daemon.log"
        self.proc: subprocess.Popen | None = None

    @property
    def name(self) -> str:
        return "BIRD 1.6.8" if self.bird16 else "bgpd-bird"

    @property
    def marker(self) -> Path:
        return self.dir / "bird.ctl.restart"

    def start(self, restart: bool) -> None:
        exe = [str(self.bird16 / "bird"), "-f"] if self.bird16 else [lab.BGPD_BIRD, "-d"]
        with open(self.log, "a") as f:
            argv = ["ip", "netns", "exec", self.ns.name, *exe]
            argv += ["-R"] if restart else []
            argv += ["-c", str(self.cfg), "-s", str(self.sock)]
            self.proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)

    def stop(self, sig: int) -> int | None:
        p = self.proc
        if p is None or p.poll() is not None:
            return p.returncode if p is not None else None
        p.send_signal(sig)
        return self.wait_exit()

    def wait_exit(self) -> int | None:
        p = self.proc
        assert p is not None
        try:
            return p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            return p.wait(5)

    def status(self) -> list[str]:
        return query(self.sock, "show status")[1]

    def recovering(self) -> bool:
        try:
            return any(x.startswith("0024") for x in self.status())
        except OSError:
            return True


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

        def r1(bird16: Path | None = None, gr_wait: int = GR_WAIT) -> R1Daemon:
            d = R1Daemon(topo.r1, work, bird16, gr_wait)
            daemons.append(d)
            return d

        yield topo, r1, r2, work
    finally:
        for d in reversed(daemons):
            try:
                d.stop(signal.SIGTERM) if isinstance(d, R1Daemon) else d.stop()
            except Exception as e:  # noqa: BLE001 - keep stopping the others
                sys.stderr.write(f"stopping {d!r}: {e}\n")
        made.close()
        if "work" in locals():
            lab.remove_dir(work)


def route_changes(mon) -> list[str]:
    return [ln for ln in mon.lines() if R1_NET in ln or R2_NET in ln]


def wait_started(topo, r1: R1Daemon) -> None:
    """R1 up: the routes both ways, the recovery over."""
    wait_sync(lambda: topo.r1.routes(R2_NET) == [R2_ROUTE], 30, what="R1 installs R2's network")
    wait_sync(lambda: topo.r2.routes(R1_NET) != [], 30, what="R2 installs R1's network")
    wait_sync(lambda: not r1.recovering(), 30, what=f"{r1.name}: the recovery over")


def graceful_restart_command(r1: R1Daemon) -> None:
    """What calico-node's operator runs before a restart: ``birdcl -s bird.ctl graceful
    restart`` (bgpd-birdcl is the image's birdcl)."""
    out = subprocess.run(
        [lab.BGPD_BIRDCL, "-s", str(r1.sock), "graceful", "restart"],
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert out.stdout.splitlines()[1:] == ["Graceful restart requested"], out
    assert r1.wait_exit() == 0, "exit 0 after the graceful stop"


@pytest.mark.parametrize("how", ["graceful-restart", "sigkill"])
def test_restart_with_R_loses_no_packet(rig, tmp_path, how):
    topo, make_r1, r2, work = rig
    r1 = make_r1()
    r1.start(restart=True)  # Calico always passes -R; nothing to recover the first time
    wait_started(topo, r1)
    r2_route = topo.r2.routes(R1_NET)

    monitors = [RouteMonitor(ns, tmp_path) for ns in (topo.r1, topo.r2)]
    ping = Pinger(topo.h1, "10.2.2.2", tmp_path / "ping.txt")
    statuses: list[list[str]] = []
    try:
        ping.wait_replies(50)
        if how == "graceful-restart":
            graceful_restart_command(r1)
            assert r1.marker.exists(), "the restart marker for the next start"
            assert "Neighbor graceful restart active" in r2.show_protocol("10.0.12.1")
        else:
            r1.stop(signal.SIGKILL)
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
    print(f"\nbgpd-bird -R after {how}: {result}")
    assert not r1.marker.exists(), "the start took the marker"
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


# bgpd-bird's start takes longer than BIRD's (a Python process: interpreter, imports, the
# file read and compiled; about 1 s on an idle 2-core machine, up to 2-3 s on a busy one),
# and the echoes are lost until it is back: it may lose this many more than BIRD 1.6.8
SIGTERM_MARGIN = 300  # echoes, 10 ms apart: 3 s


def test_sigterm_then_R_as_bird_1_6_8(rig, tmp_path, bird16):
    """``sv restart bird``: SIGTERM, then -R a second later. BIRD 1.6.8 sends Cease, R2
    drops R1's routes at once and the echoes are lost until R1 is back and its recovery
    over (the passive peer holds it SIGTERM_GR_WAIT s); bgpd-bird now does the same, in turn on
    the same topology: the same last error at R2, the routes dropped as fast, no restart
    marker, and no more loss than BIRD's plus SIGTERM_MARGIN."""
    topo, make_r1, r2, work = rig
    seen = {}
    r1 = None
    for which in (bird16, None):  # BIRD 1.6.8 first, the reference
        if r1 is not None:  # BIRD 1.6.8 hands R1 over to bgpd-bird
            r1.stop(signal.SIGTERM)
        r1 = make_r1(which, SIGTERM_GR_WAIT)
        r1.start(restart=True)
        wait_started(topo, r1)
        ping = Pinger(topo.h1, "10.2.2.2", tmp_path / f"ping-{len(seen)}.txt")
        try:
            ping.wait_replies(50)
            t0 = time.monotonic()
            status = r1.stop(signal.SIGTERM)
            wait_sync(lambda: topo.r2.routes(R1_NET) == [], 10, what="R2 drops R1's network")
            dropped = time.monotonic() - t0
            last_error = [
                x.strip() for x in r2.show_protocol("10.0.12.1").splitlines() if "Last error" in x
            ]
            marker = r1.marker.exists()
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))  # runit: a second later
            r1.start(restart=True)
            wait_started(topo, r1)
            time.sleep(1.0)
            result = ping.stop()
        finally:
            ping.kill()
        seen[r1.name] = {
            "status": status,
            "R2's last error": last_error,
            "dropped within 2 s": dropped < 2.0,
            "marker": marker,
        }
        print(
            f"\n{r1.name}: SIGTERM, -R 1 s later: R2 dropped R1's network in "
            f"{dropped * 1000:.0f} ms; {result}"
        )
        seen[r1.name]["lost"] = len(result.lost)
    bird, ours = seen["BIRD 1.6.8"], seen["bgpd-bird"]
    assert {k: v for k, v in bird.items() if k != "lost"} == {
        "status": 0,
        "R2's last error": ["Last error:       Received: Administrative shutdown"],
        "dropped within 2 s": True,
        "marker": False,
    }, seen
    assert {k: v for k, v in ours.items() if k != "lost"} == {
        k: v for k, v in bird.items() if k != "lost"
    }, seen
    assert bird["lost"] > 0, "BIRD's Cease costs the echoes until it is back"
    assert ours["lost"] <= bird["lost"] + SIGTERM_MARGIN, seen

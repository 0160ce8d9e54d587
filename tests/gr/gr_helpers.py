"""Helpers of the graceful-restart tests: bgpd and BIRD inside network namespaces, a pinger,
BIRD and GoBGP peers in their restarting modes.

The namespace plumbing (``Namespaces``, ``Netns``, ``wait_sync``) comes from
tests/kernel/kernel_helpers.py and the daemons from tests/interop (``BgpdProcess``,
``BirdPeer``, ``GobgpPeer``): this module only adds what graceful restart needs on top.
Every process is signalled only by the pid the test started (``ip netns exec`` execs the
daemon, so that pid is the daemon's own).
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
for _d in (HERE.parent / "kernel", HERE.parent / "interop"):
    if str(_d) not in sys.path:
        sys.path.insert(0, str(_d))

import bgpd_proc  # noqa: E402
import peers  # noqa: E402
from kernel_helpers import Namespaces, Netns, wait_sync  # noqa: E402, F401

GR = {"restart_time": 30, "stale_routes_time": 30, "selection_deferral": 20}


# --------------------------------------------------------------------------------------
# bgpd, BIRD and GoBGP with what graceful restart needs
# --------------------------------------------------------------------------------------


class GrBgpd(bgpd_proc.BgpdProcess):
    """bgpd, started with ``-R`` (``--graceful-restart``: this start is a restart) when
    ``restarting`` is set; otherwise bgpd decides itself (the marker of a graceful stop,
    kernel routes adopted)."""

    # bgpd's default error wait (5 s), not the harness's 1 s: a restarted GoBGP gets its
    # routes through its API after it starts, so a reconnect in its first moments gets
    # End-of-RIB before the routes (the sweep then counts them too: seen in
    # test_bgpd_helper_while_gobgp_restarts).
    error_wait = None

    def __init__(self, **kw) -> None:
        self.restarting = False
        super().__init__(**kw)

    def command(self) -> list[str]:
        return super().command() + (["-R"] if self.restarting else [])

    @property
    def marker_path(self) -> Path:
        """Where its graceful stop leaves the restart marker (beside the control socket)."""
        return self.socket_path.with_suffix(".restart")

    def start_events(self) -> list[dict]:
        """Its ``graceful restart: start`` log events: how each start counted, and why."""
        return [e for e in self.log_events() if e.get("event") == "graceful restart: start"]


class NsBgpd(GrBgpd):
    """``bgpd run`` inside a namespace (``ip netns exec NS bgpd run ...``)."""

    kind = "bgpd"

    def __init__(self, ns: Netns, **kw) -> None:
        self.ns = ns
        super().__init__(**kw)

    def command(self) -> list[str]:
        return ["ip", "netns", "exec", self.ns.name, *super().command()]


class GrBirdPeer(peers.BirdPeer):
    """BIRD with ``-R`` (graceful restart recovery after start) when ``recovery`` is set,
    an optional ``graceful restart time``, and packet tracing (``Got END-OF-RIB`` in the log;
    BIRD 2.0 does not name the channel there)."""

    def __init__(self, *, gr_time: int | None = None, **kw) -> None:
        self.recovery = False
        self.gr_time = gr_time
        super().__init__(**kw)

    def render_config(self) -> str:
        text = super().render_config()
        text = text.replace("debug protocols { states, events };", "debug protocols all;")
        if self.gr_time is not None:
            text = text.replace(
                "graceful restart on;",
                f"graceful restart on;\n  graceful restart time {self.gr_time};",
            )
        return text

    def _command(self) -> list[str]:
        return super()._command() + (["-R"] if self.recovery else [])

    def show_protocol(self, address: str) -> str:
        return self.birdc("show", "protocols", "all", self.protocol_name(address))


class GrGobgpPeer(peers.GobgpPeer):
    """GoBGP, in restarting mode (``gobgpd -r``: the R bit) when ``restarting`` is set."""

    def __init__(self, **kw) -> None:
        self.restarting = False
        super().__init__(**kw)

    def _command(self) -> list[str]:
        return super()._command() + (["-r"] if self.restarting else [])

    def _prepare(self) -> None:
        # A killed gobgpd leaves its API socket behind, and a new one then refuses to start
        # ("bind: address already in use").
        self.api_socket.unlink(missing_ok=True)
        super()._prepare()

    def neighbor_json(self, address: str) -> dict:
        return json.loads(self.gobgp("neighbor", address, "-j"))


class NsBird(GrBirdPeer):
    """BIRD inside a namespace, as on a Calico node: a kernel protocol that persists its
    routes and takes part in graceful restart, the networks of ``host_interfaces`` announced,
    one directly connected eBGP neighbor with graceful restart on."""

    def __init__(self, ns: Netns, *, host_interfaces: list[str], **kw) -> None:
        self.ns = ns
        self.host_interfaces = host_interfaces
        super().__init__(**kw)

    def render_config(self) -> str:
        (n,) = self.neighbors.values()
        ifaces = ", ".join(f'"{i}"' for i in self.host_interfaces)
        return f"""log "{self.log_path}" all;
router id {self.router_id};
debug protocols all;
protocol device {{ scan time 10; }}
protocol direct {{ ipv4; interface {ifaces}; }}
protocol kernel {{
  persist;
  graceful restart;
  scan time 10;
  ipv4 {{ export where source = RTS_BGP; import none; }};
}}
protocol bgp {self.protocol_name(n.address)} {{
  local {self.address} as {self.asn};
  neighbor {n.address} as {n.asn};
  graceful restart on;
  graceful restart time 30;
  connect delay time 1;
  connect retry time 1;
  error wait time 1, 5;
  hold time 9;
  ipv4 {{ import all; export where source = RTS_DEVICE; }};
}}
"""

    def _command(self) -> list[str]:
        return ["ip", "netns", "exec", self.ns.name, *super()._command()]


# --------------------------------------------------------------------------------------
# Data plane
# --------------------------------------------------------------------------------------


@dataclass
class PingResult:
    transmitted: int
    received: int
    lost: list[int] = field(default_factory=list)  # sequence numbers without a reply
    longest_gap_ms: float = 0.0  # the longest time between two consecutive replies
    max_rtt_ms: float = 0.0
    duration_s: float = 0.0

    def __str__(self) -> str:
        return (
            f"{self.transmitted} echo requests in {self.duration_s} s, {self.received} replies,"
            f" {len(self.lost)} lost; longest gap between replies {self.longest_gap_ms} ms,"
            f" max RTT {self.max_rtt_ms} ms"
        )


class Pinger:
    """An ICMP echo every ``interval`` s from namespace ``ns`` to ``dst`` until :meth:`stop`
    (tests/gr/icmp_probe.py: ``ip netns exec NS python icmp_probe.py DST INTERVAL``).

    Stopped with SIGTERM, the probe waits for the replies still in flight, so every missing
    reply is a lost packet.
    """

    def __init__(self, ns: Netns, dst: str, out: Path, interval: float = 0.01) -> None:
        self.out = out
        self._f = open(out, "w")  # noqa: SIM115 - closed in stop() or kill()
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns.name, sys.executable, str(HERE / "icmp_probe.py")]
            + [dst, str(interval)],
            stdout=self._f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def replies(self) -> int:
        return self.text().count("R ")

    def wait_replies(self, n: int = 50, timeout: float = 10.0) -> None:
        def enough():
            assert self.proc.poll() is None, f"the probe exited:\n{self.text()[-2000:]}"
            return self.replies() >= n

        wait_sync(enough, timeout, what=f"{n} echo replies")

    def stop(self) -> PingResult:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        finally:
            self.kill()
        last = self.text().strip().splitlines()[-1:]
        try:
            return PingResult(**json.loads(last[0]))
        except (IndexError, ValueError, TypeError) as e:
            raise AssertionError(f"no summary from the probe ({e}):\n{self.text()[-2000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(Exception):
                self.proc.wait(5)
        self._f.close()


class RouteMonitor:
    """``ip -n NS monitor route`` into a file until :meth:`stop`."""

    def __init__(self, ns: Netns, workdir: Path) -> None:
        self.ns = ns
        self.path = workdir / f"monitor-{ns.name}.txt"
        self._f = open(self.path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            ["ip", "-n", ns.name, "monitor", "route"],
            stdout=self._f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        time.sleep(0.2)  # subscribed before anything happens

    def lines(self) -> list[str]:
        return self.path.read_text(errors="replace").splitlines()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(Exception):
                self.proc.wait(5)
        self._f.close()


# --------------------------------------------------------------------------------------
# Topology: H1 - R1 - R2 - H2
# --------------------------------------------------------------------------------------


@dataclass
class Topology:
    """H1 (10.1.1.2) - R1 (10.1.1.1 | 10.0.12.1) - R2 (10.0.12.2 | 10.2.2.1) - H2 (10.2.2.2).

    The hosts route everything through their router; the routers forward and have no route
    to the other host network but what BGP gives them: 10.1.1.0/24 is R1's connected
    network on ``h1``, 10.2.2.0/24 R2's on ``h2``; the routers meet on 10.0.12.0/30
    (``r2`` in R1, ``r1`` in R2).
    """

    h1: Netns
    r1: Netns
    r2: Netns
    h2: Netns

    @classmethod
    def build(cls, namespaces: Namespaces) -> Topology:
        h1, r1, r2, h2 = (namespaces() for _ in range(4))
        namespaces.veth(h1, "eth0", r1, "h1")
        namespaces.veth(r1, "r2", r2, "r1")
        namespaces.veth(r2, "h2", h2, "eth0")
        h1.up("eth0", "10.1.1.2/24")
        r1.up("h1", "10.1.1.1/24")
        r1.up("r2", "10.0.12.1/30")
        r2.up("r1", "10.0.12.2/30")
        r2.up("h2", "10.2.2.1/24")
        h2.up("eth0", "10.2.2.2/24")
        h1.ip("route", "add", "default", "via", "10.1.1.1")
        h2.ip("route", "add", "default", "via", "10.2.2.1")
        for r in (r1, r2):
            subprocess.run(
                ["ip", "netns", "exec", r.name, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
                check=True,
            )
        return cls(h1, r1, r2, h2)

    def bgp_routes(self) -> tuple[list[str], list[str]]:
        """(R1's routes to 10.2.2.0/24, R2's routes to 10.1.1.0/24)."""
        return self.r1.routes("10.2.2.0/24"), self.r2.routes("10.1.1.0/24")

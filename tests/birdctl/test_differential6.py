"""The IPv6 daemon: real BIRD 1.6.8's ``bird6`` (static, device, direct in a namespace of
its own) against our formatters with ``Snapshot(ipv6=True)``: ip6_hash listing order, IPv6
prefixes in the 18-column field, and bird6's lexer (a dotted quad is a router id there)."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from bc_helpers import ThreadedServer, normalise, query, stop_pid_file, wait_for
from bc_lab import parse_time, read_dynamic
from needs import skip_or_fail

from bgpd.birdctl.snapshot import Protocol, Route, RoutePath, RouteStats, Snapshot, Status

CFG = """\
router id 192.0.2.1;
protocol static {
  route 2001:db8:a::/48 blackhole;
  route 2001:db8:b::/48 via 2001:db8:1::2;
  route 2001:db8:c::/64 unreachable;
  route fd00::/8 prohibit;
  route 2001:db8:a::/64 blackhole;
}
protocol device { scan time 2; }
protocol direct { interface "bcv0"; }
"""
STATIC = [
    ("2001:db8:a::/48", {"dest": "blackhole"}),
    ("2001:db8:b::/48", {"dest": "router", "gateway": "2001:db8:1::2", "iface": "bcv0"}),
    ("2001:db8:c::/64", {"dest": "unreachable"}),
    ("fd00::/8", {"dest": "prohibited"}),
    ("2001:db8:a::/64", {"dest": "blackhole"}),
]
COMMANDS = [
    "show status",
    "show protocols",
    "show protocols all",
    "show route",
    "show route all",
    "show route for 2001:db8:a::1",
    "show route 2001:db8:b::/48",
    "show route 2001:db8:b::1/48",
    "show route 10.0.0.0/8",
    "show route where net ~ 2001:db8::/32",
    "show route where net ~ [ 2001:db8::/32{48,64} ] && dest = RTD_BLACKHOLE",
    "show route count",
]


@pytest.fixture(scope="module")
def bird6_replies(bird16):
    if os.geteuid() != 0 or shutil.which("ip") is None:
        skip_or_fail("the bird6 lab needs root and iproute2")
    d = Path(tempfile.mkdtemp(prefix="bc-6-"))
    ns = f"bc6{os.getpid() % 100000}"
    try:
        for cmd in (
            ["ip", "netns", "add", ns],
            ["ip", "-n", ns, "link", "set", "lo", "up"],
            ["ip", "-n", ns, "link", "add", "bcv0", "type", "veth", "peer", "name", "bcv1"],
            ["ip", "-n", ns, "addr", "add", "2001:db8:1::1/64", "dev", "bcv0", "nodad"],
            ["ip", "-n", ns, "link", "set", "bcv0", "up"],
            ["ip", "-n", ns, "link", "set", "bcv1", "up"],
        ):
            subprocess.run(cmd, check=True, capture_output=True)
        (d / "b6.cfg").write_text(CFG)
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                ns,
                str(bird16 / "bird6"),
                "-c",
                "b6.cfg",
                "-s",
                "b6.ctl",
                "-P",
                "b6.pid",
            ],
            cwd=d,
            check=True,
            capture_output=True,
            timeout=20,
        )
        wait_for(
            lambda: "6 of 6 routes" in query(d / "b6.ctl", "show route count")[1][-1],
            30,
            "bird6's routes",
        )
        time.sleep(0.1)
        extra = ["show status", "show protocols all", "show route", "show memory"]
        r = query(d / "b6.ctl", *COMMANDS, *extra)
        yield dict(zip(COMMANDS, r[1:], strict=False)), r[1 + len(COMMANDS) :]
    except subprocess.CalledProcessError as e:
        skip_or_fail(f"cannot start the bird6 lab: {e.stderr}")
    finally:
        stop_pid_file(d / "b6.pid")
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def ours6(bird6_replies, tmp_path_factory):
    theirs, (status, protos_all, routes, memory) = bird6_replies
    dyn = read_dynamic(status, protos_all, routes, {}, {}, memory)
    t = lambda text: parse_time(text, dyn.now)  # noqa: E731

    def proto(name, kind, pref):
        d = dyn.protos[name]
        st = d.stats
        return Protocol(
            name,
            kind,
            d.state,
            t(d.since),
            preference=pref,
            stats=RouteStats(
                *d.routes,
                import_updates=st[0],
                import_withdraws=st[1],
                export_updates=st[2],
                export_withdraws=st[3],
            ),
        )

    def path(prefix, protocol, **kw):
        return RoutePath(protocol, t(dyn.route_times[(prefix, protocol)]), **kw)

    nets = [
        Route(ipaddress.ip_network(p), (path(p, "static1", preference=200, **kw),), seq=i)
        for i, (p, kw) in enumerate(STATIC)
    ]
    nets.append(
        Route(
            ipaddress.ip_network("2001:db8:1::/64"),
            (
                path(
                    "2001:db8:1::/64",
                    "direct1",
                    dest="device",
                    iface="bcv0",
                    preference=240,
                    source="device",
                ),
            ),
            seq=9,
        )
    )
    snap = Snapshot(
        Status("192.0.2.1", dyn.reboot, dyn.reconfig, version="1.6.8"),
        (
            proto("static1", "Static", 200),
            proto("device1", "Device", 240),
            proto("direct1", "Direct", 240),
        ),
        tuple(reversed(nets)),
        dyn.memory,
        ipv6=True,
    )
    path_ = str(tmp_path_factory.mktemp("bc-o6") / "bird6.ctl")
    with ThreadedServer(path_, lambda: snap, clock=lambda: dyn.now, version="1.6.8"):
        r = query(path_, *COMMANDS)
    return dict(zip(COMMANDS, r[1:], strict=True))


@pytest.mark.parametrize("command", COMMANDS)
def test_same_reply_as_bird6(bird6_replies, ours6, command):
    theirs = normalise("\n".join(bird6_replies[0][command]))
    mine = normalise("\n".join(ours6[command]))
    assert mine.split("\n") == theirs.split("\n")

"""The differential lab: real BIRD 1.6.8 with static, kernel, device, direct and four BGP
protocols (one Established to a BIRD 2 peer that announces three routes with AS paths, one
disabled, one passive in graceful-restart recovery, one connecting to nobody), in two
network namespaces of our own joined by a veth pair, so nothing touches the host's tables.

:func:`lab_snapshot` builds the :class:`~bgpd.birdctl.snapshot.Snapshot` that describes
the same state for our formatters. Its structure (protocols, their kinds, order,
descriptions, preferences, filters, neighbours, capabilities, routes, next hops, BGP
attributes, which routes are exported to which protocol) is written here from the lab's
configuration. Only values that depend on the moment are read back from BIRD's own replies
(:class:`Dynamic`): state-change and route times, the server time and reboot times, the
ticking timers, the route counters of each protocol, the state of the peers that cannot
connect (Connect/Active and their socket error), GR recovery status and memory sizes.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import datetime

from bgpd.birdctl.snapshot import (
    AsPathSegment,
    BgpAttrs,
    BgpErrorClass,
    BgpInfo,
    GracefulRestartStatus,
    MemoryUsage,
    Protocol,
    Route,
    RoutePath,
    RouteStats,
    Snapshot,
    Status,
    Timer,
)

MESH = "Mesh_192_0_2_2"
NODE = "Node_192_0_2_9"
PASSIVE = "Global_192_0_2_8"
ACTIVE = "Global_192_0_2_7"

# "1006-  Description:    " is 23 characters: 487 more make the longest line BIRD sends
# (510 + newline), one more overflows into "8000-<line overflow>" (nest/cli.c cli_printf)
LONG_FITS = "f" * 487
LONG_OVERFLOWS = "o" * 488

BIRD16_CFG = f"""\
router id 192.0.2.1;
protocol static {{
  route 10.0.0.0/30 blackhole;
  route 10.0.1.0/24 via 192.0.2.2;
  route 10.0.2.0/24 unreachable;
  route 10.0.3.0/24 prohibit;
}}
protocol kernel {{
  learn;
  persist;
  scan time 2;
  import all;
  export none;
}}
protocol device {{ scan time 2; }}
protocol direct {{ interface "bcv0"; }}
template bgp bgp_template {{
  local as 64512;
  import all;
  export all;
}}
protocol bgp {MESH} from bgp_template {{
  description "Connection to BGP peer";
  neighbor 192.0.2.2 as 65001;
  source address 192.0.2.1;
}}
protocol bgp {NODE} from bgp_template {{
  neighbor 192.0.2.9 as 64512;
  disabled;
}}
protocol bgp {PASSIVE} from bgp_template {{
  description "{LONG_FITS}";
  neighbor 192.0.2.8 as 64512;
  passive;
  graceful restart on;
}}
protocol bgp {ACTIVE} from bgp_template {{
  description "{LONG_OVERFLOWS}";
  neighbor 192.0.2.7 as 64512;
  connect delay time 30;
}}
"""

BIRD2_CONF = """\
router id 192.0.2.2;
protocol device {}
protocol static s4 {
  ipv4;
  route 172.16.1.0/24 unreachable;
  route 172.16.2.0/24 unreachable;
  route 172.16.3.0/24 unreachable;
}
protocol bgp up {
  local 192.0.2.2 as 65001;
  neighbor 192.0.2.1 as 64512;
  ipv4 {
    import all;
    export filter {
      if net = 172.16.2.0/24 then {
        bgp_path.prepend(65002); bgp_path.prepend(65001);
        bgp_community.add((65001,42)); bgp_med = 7;
      }
      accept;
    };
  };
}
"""

KERNEL_ROUTES = (
    ("198.51.100.0/24", ["via", "192.0.2.2", "dev", "bcv0"]),
    ("203.0.113.0/25", ["dev", "bcv0"]),
)


# --------------------------------------------------------------------------------------
# values read back from BIRD's replies
# --------------------------------------------------------------------------------------


def parse_time(text: str, today: datetime) -> datetime:
    if ":" in text:
        h, m, s = (int(x) for x in text.split(":"))
        return today.replace(hour=h, minute=m, second=s, microsecond=0)
    return datetime.strptime(text, "%Y-%m-%d")


@dataclass
class ProtoDyn:
    state: str = "up"
    since: str = "00:00:00"
    bgp_state: str | None = None
    error: str = ""
    timers: dict[str, tuple[int, int]] = field(default_factory=dict)
    routes: tuple[int, int, int] = (0, 0, 0)
    stats: list[tuple[int, ...]] = field(default_factory=list)
    gr: tuple[bool, bool] = (False, False)


@dataclass
class Dynamic:
    now: datetime
    reboot: datetime
    reconfig: datetime
    gr: GracefulRestartStatus | None
    protos: dict[str, ProtoDyn]
    route_times: dict[tuple[str, str], str]  # (prefix, protocol) -> time text
    exported: dict[str, set[str]]  # protocol -> prefixes BIRD shows in ``export P``
    noexported: dict[str, set[str]]  # protocol -> prefixes BIRD shows in ``noexport P``
    memory: MemoryUsage


def _body(line: str) -> str:
    return line[5:] if line[:4].isdigit() else line[1:]


def read_dynamic(
    status: list[str],
    protos_all: list[str],
    routes: list[str],
    exports: dict[str, list[str]],
    noexports: dict[str, list[str]],
    memory: list[str],
) -> Dynamic:
    """Extract the moment-dependent values from BIRD's replies (raw lines)."""
    vals = {}
    gr = None
    waiting = None
    for line in status:
        b = _body(line)
        for key in ("Current server time is ", "Last reboot on ", "Last reconfiguration on "):
            if b.startswith(key):
                vals[key] = datetime.strptime(b[len(key) :], "%Y-%m-%d %H:%M:%S")
        if m := re.search(r"Waiting for (\d+) protocols", b):
            waiting = int(m.group(1))
        if m := re.search(r"Wait timer is (\d+)/(\d+)", b):
            gr = GracefulRestartStatus(waiting or 0, int(m.group(1)), int(m.group(2)))
    now = vals["Current server time is "]
    protos: dict[str, ProtoDyn] = {}
    cur: ProtoDyn | None = None
    for line in protos_all:
        if line.startswith("1002-"):
            f = line[5:].split()
            cur = protos[f[0]] = ProtoDyn(state=f[3], since=f[4])
            if f[1] == "BGP" and f[3] not in ("down", "flush"):
                cur.bgp_state = f[5]
                cur.error = " ".join(f[6:])
            elif f[1] == "BGP":
                cur.error = " ".join(f[5:])
            continue
        if cur is None:
            continue
        b = _body(line).strip()
        if m := re.match(
            r"(Hold timer|Keepalive timer|Connect delay|Error wait):\s+(\d+)/(\d+)", b
        ):
            cur.timers[m.group(1)] = (int(m.group(2)), int(m.group(3)))
        elif m := re.match(r"Routes:\s+(\d+) imported, (\d+) exported, (\d+) preferred", b):
            cur.routes = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
        elif re.match(r"(Import|Export) (updates|withdraws):", b):
            cur.stats.append(tuple(int(x) for x in re.findall(r"\d+", b)))
        elif b.startswith("GR recovery:"):
            cur.gr = ("pending" in b, "waiting" in b)
        elif b.startswith("BGP state:"):
            cur.bgp_state = b.split()[-1]
    route_times: dict[tuple[str, str], str] = {}
    prefix = ""
    for line in routes:
        b = _body(line)
        if m := re.match(r"(\S*)\s+.*\[(\S+) (\S+)\]", b):
            prefix = m.group(1) or prefix
            route_times[(prefix, m.group(2))] = m.group(3)

    def prefixes(lines: list[str]) -> set[str]:
        return {_body(ln).split()[0] for ln in lines if ln.startswith("1007") or ln.startswith(" ")}

    exported = {p: prefixes(lines) for p, lines in exports.items()}
    noexported = {p: prefixes(lines) for p, lines in noexports.items()}
    sizes = [
        int(re.search(r"(\d+) ([ kMG])B$", ln).group(1))
        * {" ": 1, "k": 1024, "M": 1 << 20, "G": 1 << 30}[
            re.search(r"(\d+) ([ kMG])B$", ln).group(2)
        ]
        for ln in memory
        if re.search(r"\d+ [ kMG]B$", ln)
    ]
    mem = MemoryUsage(*sizes) if len(sizes) == 5 else MemoryUsage()
    return Dynamic(
        now,
        vals["Last reboot on "],
        vals["Last reconfiguration on "],
        gr,
        protos,
        route_times,
        exported,
        noexported,
        mem,
    )


# --------------------------------------------------------------------------------------
# the snapshot
# --------------------------------------------------------------------------------------


def _stats(d: ProtoDyn) -> RouteStats:
    st = d.stats + [(0,) * 5] * (4 - len(d.stats))
    return RouteStats(
        imported=d.routes[0],
        exported=d.routes[1],
        preferred=d.routes[2],
        import_updates=tuple(st[0][:5]),  # type: ignore[arg-type]
        import_withdraws=tuple(st[1][:4]),  # type: ignore[arg-type]
        export_updates=tuple(st[2][:4]),  # type: ignore[arg-type]
        export_withdraws=tuple(st[3][:2]),  # type: ignore[arg-type]
    )


def _timer(d: ProtoDyn, key: str) -> Timer | None:
    t = d.timers.get(key)
    return Timer(*t) if t else None


def _error(text: str) -> tuple[BgpErrorClass, str]:
    for cls in (
        BgpErrorClass.SOCKET,
        BgpErrorClass.BGP_RX,
        BgpErrorClass.BGP_TX,
        BgpErrorClass.AUTO_DOWN,
        BgpErrorClass.MISC,
    ):
        if text.startswith(cls.value):
            return cls, text[len(cls.value) :]
    return BgpErrorClass.NONE, ""


def lab_snapshot(dyn: Dynamic, version: str = "1.6.8") -> Snapshot:
    now = dyn.now
    t = lambda text: parse_time(text, now)  # noqa: E731

    def proto(name: str, kind: str, pref: int, out_filter: str, **kw) -> Protocol:
        d = dyn.protos[name]
        return Protocol(
            name=name,
            proto=kind,
            state=d.state,
            since=t(d.since),
            preference=pref,
            input_filter="ACCEPT",
            output_filter=out_filter,
            stats=_stats(d),
            gr_pending=d.gr[0],
            gr_waiting=d.gr[1],
            **kw,
        )

    def bgp(name: str, addr: str, asn: int, **kw) -> BgpInfo:
        d = dyn.protos[name]
        cls, msg = _error(d.error)
        return BgpInfo(
            state=d.bgp_state or "Down",
            neighbor_address=addr,
            neighbor_as=asn,
            error_class=cls,
            error_message=msg,
            connect_delay=_timer(d, "Connect delay"),
            error_wait=_timer(d, "Error wait"),
            hold_timer=_timer(d, "Hold timer"),
            keepalive_timer=_timer(d, "Keepalive timer"),
            **kw,
        )

    protocols = [
        proto("static1", "Static", 200, "REJECT"),
        proto("kernel1", "Kernel", 10, "REJECT"),
        proto("device1", "Device", 240, "REJECT"),
        proto("direct1", "Direct", 240, "REJECT"),
        proto(
            MESH,
            "BGP",
            100,
            "ACCEPT",
            description="Connection to BGP peer",
            bgp=bgp(
                MESH,
                "192.0.2.2",
                65001,
                neighbor_id="192.0.2.2",
                neighbor_caps=("refresh", "enhanced-refresh", "restart-aware", "llgr-aware", "AS4"),
                session=("external", "AS4"),
                source_address="192.0.2.1",
            ),
        ),
        proto(NODE, "BGP", 100, "ACCEPT", disabled=True, bgp=bgp(NODE, "192.0.2.9", 64512)),
        proto(
            PASSIVE,
            "BGP",
            100,
            "ACCEPT",
            description=LONG_FITS,
            bgp=bgp(PASSIVE, "192.0.2.8", 64512),
        ),
        proto(
            ACTIVE,
            "BGP",
            100,
            "ACCEPT",
            description=LONG_OVERFLOWS,
            bgp=bgp(ACTIVE, "192.0.2.7", 64512),
        ),
    ]
    # BIRD lists protocols in its global list order: read it from its reply
    order = list(dyn.protos)
    protocols.sort(key=lambda p: order.index(p.name))

    def path(prefix: str, protocol: str, **kw) -> RoutePath:
        return RoutePath(
            protocol=protocol,
            since=t(dyn.route_times.get((prefix, protocol), "00:00:00")),
            exported_to=frozenset(p for p, nets in dyn.exported.items() if prefix in nets),
            export_rejected_by=frozenset(p for p, nets in dyn.noexported.items() if prefix in nets),
            **kw,
        )

    def net(prefix: str, *paths: RoutePath, seq: int) -> Route:
        return Route(ipaddress.ip_network(prefix), tuple(paths), seq=seq)

    def bgp_attrs(path_: tuple[int, ...], **kw) -> BgpAttrs:
        return BgpAttrs(
            origin=0,
            as_path=(AsPathSegment(False, path_),),
            next_hop=("192.0.2.2",),
            local_pref=100,
            **kw,
        )

    via = {"dest": "router", "gateway": "192.0.2.2", "iface": "bcv0"}
    kernel_attrs = (("Kernel.source", "3"), ("Kernel.metric", "0"))
    routes = [
        net("10.0.0.0/30", path("10.0.0.0/30", "static1", dest="blackhole", preference=200), seq=1),
        net("10.0.1.0/24", path("10.0.1.0/24", "static1", preference=200, **via), seq=2),
        net(
            "10.0.2.0/24", path("10.0.2.0/24", "static1", dest="unreachable", preference=200), seq=3
        ),
        net(
            "10.0.3.0/24", path("10.0.3.0/24", "static1", dest="prohibited", preference=200), seq=4
        ),
        net(
            "192.0.2.0/24",
            path(
                "192.0.2.0/24",
                "direct1",
                dest="device",
                iface="bcv0",
                preference=240,
                source="device",
            ),
            seq=5,
        ),
        net(
            "198.51.100.0/24",
            path(
                "198.51.100.0/24",
                "kernel1",
                preference=10,
                source="inherit",
                extra_attrs=kernel_attrs,
                **via,
            ),
            seq=6,
        ),
        net(
            "203.0.113.0/25",
            path(
                "203.0.113.0/25",
                "kernel1",
                dest="device",
                iface="bcv0",
                preference=10,
                source="inherit",
                extra_attrs=kernel_attrs,
            ),
            seq=7,
        ),
        net(
            "172.16.1.0/24",
            path(
                "172.16.1.0/24", MESH, preference=100, source="BGP", bgp=bgp_attrs((65001,)), **via
            ),
            seq=8,
        ),
        net(
            "172.16.2.0/24",
            path(
                "172.16.2.0/24",
                MESH,
                preference=100,
                source="BGP",
                bgp=bgp_attrs((65001, 65001, 65002), med=7, communities=((65001, 42),)),
                **via,
            ),
            seq=9,
        ),
        net(
            "172.16.3.0/24",
            path(
                "172.16.3.0/24", MESH, preference=100, source="BGP", bgp=bgp_attrs((65001,)), **via
            ),
            seq=10,
        ),
    ]
    status = Status(
        router_id="192.0.2.1",
        last_reboot=dyn.reboot,
        last_reconfiguration=dyn.reconfig,
        graceful_restart=dyn.gr,
        version=version,
    )
    return Snapshot(status, tuple(protocols), tuple(routes), dyn.memory)


DYNAMIC_COMMANDS = [
    "show status",
    "show protocols all",
    "show route",
    f"show route export {MESH}",
    "show route export kernel1",
    f"show route noexport {MESH}",
    "show route noexport kernel1",
    "show memory",
]


def capture(sock, commands: list[str]):
    """BIRD's replies to ``commands`` and the Dynamic values of the same moment (the
    DYNAMIC_COMMANDS are sent on the same connection right after)."""
    from bc_helpers import query

    replies = query(sock, *commands, *DYNAMIC_COMMANDS)
    theirs = dict(zip(commands, replies[1 : 1 + len(commands)], strict=True))
    d = dict(zip(DYNAMIC_COMMANDS, replies[1 + len(commands) :], strict=True))
    dyn = read_dynamic(
        status=d["show status"],
        protos_all=d["show protocols all"],
        routes=d["show route"],
        exports={MESH: d[f"show route export {MESH}"], "kernel1": d["show route export kernel1"]},
        noexports={
            MESH: d[f"show route noexport {MESH}"],
            "kernel1": d["show route noexport kernel1"],
        },
        memory=d["show memory"],
    )
    return replies[0], theirs, dyn

"""The daemon: wires config, listeners, sessions, routes and the control socket together."""

import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import sys
import time

import structlog

from bgpd.api.server import ControlServer
from bgpd.fsm import SessionSettings, State
from bgpd.session.listener import Listener
from bgpd.session.peer import PeerSession, Transport
from bgpd.session.tcp import ttl_for
from bgpd.wire import AttrSet, end_of_rib, intern, pack_announce
from bgpd.wire import prefix as pfx
from bgpd.wire.capabilities import capability_name
from bgpd.wire.constants import (
    AS_SEQUENCE,
    FAMILY_BY_NAME,
    FAMILY_NAMES,
    IPV4_UNICAST,
    IPV6_UNICAST,
    ORIGIN_IGP,
    ORIGIN_NAMES,
    SEGMENT_NAMES,
)

log = structlog.get_logger("bgpd")


def configure_logging(level: str = "info", json_logs: bool | None = None) -> None:
    """structlog: key-value on a terminal, JSON lines otherwise."""
    if json_logs is None:
        json_logs = not sys.stderr.isatty()
    renderer = (
        structlog.processors.JSONRenderer()
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def _mapped_v6(addr: str) -> bytes:
    """An IPv6 next hop for a session running over IPv4: the v4-mapped address."""
    return ipaddress.IPv6Address(f"::ffff:{addr}").packed


class Neighbor:
    """A configured neighbor at run time: its session and what it sent us."""

    def __init__(self, speaker: "Speaker", cfg) -> None:
        self.speaker = speaker
        self.cfg = cfg
        self.address = cfg.address
        self.rib_in: dict = {IPV4_UNICAST: {}, IPV6_UNICAST: {}}
        self.advertised: dict = {IPV4_UNICAST: 0, IPV6_UNICAST: 0}
        self.session = PeerSession(
            speaker.settings_for(cfg), speaker.transport_for(cfg), speaker, speaker.loop
        )
        self.session.neighbor = self
        self.state_since = time.monotonic()

    @property
    def ibgp(self) -> bool:
        return self.cfg.asn == self.speaker.local_as_for(self.cfg)

    def received_count(self) -> int:
        return sum(len(t) for t in self.rib_in.values())


class Speaker:
    """Everything a running bgpd holds; the session handler for every peer."""

    def __init__(self, config, config_path: str | None = None, loop=None) -> None:
        self.config = config
        self.config_path = config_path
        self.loop = loop or asyncio.get_event_loop()
        self.started = time.monotonic()
        self.neighbors: dict[str, Neighbor] = {}
        self.listeners: list[Listener] = []
        self.control: ControlServer | None = None
        self.stopping = asyncio.Event()
        self.networks = self._networks(config)

    # --- configuration to runtime objects -------------------------------------------------

    @staticmethod
    def _networks(config) -> dict:
        nets: dict = {IPV4_UNICAST: [], IPV6_UNICAST: []}
        for n in config.networks:
            net = ipaddress.ip_network(str(n))
            fam = IPV4_UNICAST if net.version == 4 else IPV6_UNICAST
            nets[fam].append(pfx.from_network(net))
        return nets

    def local_as_for(self, cfg) -> int:
        return getattr(cfg, "local_as", None) or self.config.asn

    def settings_for(self, cfg) -> SessionSettings:
        fams = tuple(FAMILY_BY_NAME[f] for f in cfg.families)
        add_path = {}
        ap = getattr(cfg, "add_path", None)
        if ap:
            for fam_name, mode in _add_path_modes(ap, cfg.families).items():
                add_path[FAMILY_BY_NAME[fam_name]] = mode
        kwargs = dict(
            local_as=self.local_as_for(cfg),
            peer_as=cfg.asn,
            router_id=str(self.config.router_id),
            hold_time=cfg.hold_time,
            connect_retry=cfg.connect_retry,
            passive=cfg.passive,
            delay_open=getattr(cfg, "delay_open", 0) or 0,
            families=fams,
            route_refresh=getattr(cfg, "route_refresh", True),
            extended_message=getattr(cfg, "extended_message", True),
            four_octet_as=getattr(cfg, "four_octet_as", True),
            add_path=add_path,
        )
        if cfg.keepalive is not None:
            kwargs["keepalive"] = cfg.keepalive
        return SessionSettings(**kwargs)

    def transport_for(self, cfg) -> Transport:
        ebgp = cfg.asn != self.local_as_for(cfg)
        ttl, min_ttl = ttl_for(ebgp, cfg.ttl_security, cfg.multihop)
        return Transport(
            remote_address=str(cfg.address),
            remote_port=cfg.port,
            local_address=str(cfg.source_address) if cfg.source_address else None,
            password=cfg.password,
            ttl=ttl,
            min_ttl=min_ttl,
            connect_timeout=min(float(cfg.connect_retry), 30.0),
        )

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        for ncfg in cfg.neighbors:
            self.neighbors[str(ncfg.address)] = Neighbor(self, ncfg)
        gtsm = any(n.ttl_security for n in cfg.neighbors)
        for lcfg in cfg.listen:
            lst = Listener(str(lcfg.address), lcfg.port, self._lookup, self.loop)
            for n in cfg.neighbors:
                if n.password and _same_family(str(n.address), str(lcfg.address)):
                    lst.md5[str(n.address)] = n.password
            lst.start()
            if gtsm:
                lst.set_ttl(255)
            self.listeners.append(lst)
        if cfg.control_socket:
            self.control = ControlServer(str(cfg.control_socket), self.dispatch)
            await self.control.start()
        for n in self.neighbors.values():
            if not getattr(n.cfg, "shutdown", False):
                n.session.start()
        log.info(
            "bgpd started",
            router_id=str(cfg.router_id),
            asn=cfg.asn,
            neighbors=len(self.neighbors),
            pid=os.getpid(),
        )

    async def stop(self, message: str = "bgpd is shutting down") -> None:
        for n in self.neighbors.values():
            n.session.close(subcode=2, message=message)
        # Give NOTIFICATIONs a moment to leave.
        await asyncio.sleep(0.05)
        for lst in self.listeners:
            lst.close()
        if self.control is not None:
            await self.control.close()
        log.info("bgpd stopped")

    def _lookup(self, address: str):
        n = self.neighbors.get(address)
        return n.session if n is not None else None

    # --- session handler ----------------------------------------------------------------------

    def session_established(self, session: PeerSession) -> None:
        n = session.neighbor
        n.state_since = time.monotonic()
        neg = session.fsm.negotiated
        for fam in sorted(neg.families):
            self._announce_networks(n, fam)
            session.send([end_of_rib(fam)])

    def session_down(self, session: PeerSession, event) -> None:
        n = session.neighbor
        n.state_since = time.monotonic()
        for table in n.rib_in.values():
            table.clear()
        for fam in n.advertised:
            n.advertised[fam] = 0

    def updates_received(self, session: PeerSession, updates) -> None:
        n = session.neighbor
        rib_in = n.rib_in
        for u in updates:
            for fam, prefixes in u.unreach():
                table = rib_in.get(fam)
                if table is not None:
                    for p in prefixes:
                        table.pop(p, None)
            for fam, attrs, prefixes in u.reach():
                table = rib_in.get(fam)
                if table is not None:
                    for p in prefixes:
                        table[p] = attrs

    def route_refresh_received(self, session: PeerSession, rr) -> None:
        fam = (rr.afi, rr.safi)
        if fam in session.fsm.negotiated.families and rr.subtype == 0:
            self._announce_networks(session.neighbor, fam)

    def session_writable(self, session: PeerSession) -> None:
        pass

    # --- origination ----------------------------------------------------------------------------

    def _announce_networks(self, n: Neighbor, fam) -> None:
        prefixes = self.networks.get(fam) or []
        if not prefixes:
            return
        attrs = self._origin_attrs(n, fam)
        if attrs is None:
            log.warning(
                "no next hop for family", peer=n.address, family=FAMILY_NAMES.get(fam, str(fam))
            )
            return
        ctx = n.session.fsm.negotiated.context
        n.session.send(pack_announce(fam, attrs, prefixes, ctx))
        n.advertised[fam] = len(prefixes)

    def _origin_attrs(self, n: Neighbor, fam) -> AttrSet | None:
        local = n.session.local_address()
        if local is None:
            return None
        if fam == IPV4_UNICAST:
            if ":" in local:
                return None
            nh = pfx.addr_from_str(local)
        else:
            nh = pfx.addr_from_str(local) if ":" in local else _mapped_v6(local)
        if n.ibgp:
            return intern(AttrSet(origin=ORIGIN_IGP, as_path=(), next_hop=nh, local_pref=100))
        local_as = self.local_as_for(n.cfg)
        return intern(
            AttrSet(origin=ORIGIN_IGP, as_path=((AS_SEQUENCE, (local_as,)),), next_hop=nh)
        )

    # --- control API ------------------------------------------------------------------------------

    def dispatch(self, command: str, args: dict):
        handler = getattr(self, f"cmd_{command}", None)
        if handler is None:
            raise ValueError(f"unknown command {command!r}")
        return handler(**(args or {}))

    def cmd_ping(self) -> dict:
        return {"pong": True, "pid": os.getpid()}

    def _neighbor(self, address: str) -> Neighbor:
        n = self.neighbors.get(str(address))
        if n is None:
            raise ValueError(f"no neighbor {address}")
        return n

    def neighbor_info(self, n: Neighbor) -> dict:
        s = n.session
        fsm = s.fsm
        neg = fsm.negotiated if s.established else None
        stats = fsm.stats
        now = time.monotonic()
        caps = []
        fams = []
        hold = keepalive = None
        router_id = None
        if neg is not None:
            caps = sorted({capability_name(c.code) for c in neg.peer_open.capabilities})
            fams = sorted(FAMILY_NAMES.get(f, str(f)) for f in neg.families)
            hold = neg.hold_time
            keepalive = neg.keepalive
            router_id = neg.peer_open.router_id
        est = getattr(stats, "established_at", None)
        return {
            "address": n.address,
            "asn": n.cfg.asn,
            "state": _state_name(s.state),
            "router_id": router_id,
            "local_address": s.local_address(),
            "uptime": (now - est) if (s.established and est is not None) else None,
            "since": now - n.state_since,
            "hold_time": hold,
            "keepalive": keepalive,
            "capabilities": caps,
            "families": fams,
            "last_error": fsm.last_error or None,
            "messages": {"in": _counts(stats, "in"), "out": _counts(stats, "out")},
            "prefixes": {
                "received": n.received_count(),
                "accepted": n.received_count(),
                "advertised": sum(n.advertised.values()),
            },
            "description": getattr(n.cfg, "description", None),
            "dynamic_from": None,
        }

    def cmd_show_neighbors(self, address: str | None = None) -> dict:
        ns = [self._neighbor(address)] if address else list(self.neighbors.values())
        return {"neighbors": [self.neighbor_info(n) for n in ns]}

    def cmd_show_summary(self) -> dict:
        routes = {"ipv4": 0, "ipv6": 0}
        for n in self.neighbors.values():
            routes["ipv4"] += len(n.rib_in[IPV4_UNICAST])
            routes["ipv6"] += len(n.rib_in[IPV6_UNICAST])
        return {
            "router_id": str(self.config.router_id),
            "asn": self.config.asn,
            "uptime": time.monotonic() - self.started,
            "neighbors": {
                "total": len(self.neighbors),
                "established": sum(1 for n in self.neighbors.values() if n.session.established),
            },
            "routes": routes,
        }

    def cmd_show_routes(
        self,
        prefix: str | None = None,
        family: str | None = None,
        neighbor: str | None = None,
        received: bool = False,
        advertised: bool = False,
    ) -> dict:
        fams = [FAMILY_BY_NAME[family]] if family else [IPV4_UNICAST, IPV6_UNICAST]
        want = None
        if prefix:
            net = ipaddress.ip_network(prefix, strict=False)
            want = pfx.from_network(net)
            fams = [IPV4_UNICAST if net.version == 4 else IPV6_UNICAST]
        sources = [self._neighbor(neighbor)] if neighbor else list(self.neighbors.values())
        routes: dict = {}
        for fam in fams:
            for p in self.networks.get(fam, []):
                if (want is None or p == want) and not received:
                    routes.setdefault((fam, p), []).append(_local_path())
            if advertised:
                continue
            for n in sources:
                for p, attrs in n.rib_in[fam].items():
                    if want is not None and p != want:
                        continue
                    routes.setdefault((fam, p), []).append(_path_json(attrs, n.address))
        out = []
        for (fam, p), paths in sorted(routes.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            out.append(
                {"prefix": pfx.to_str(p, fam[0]), "family": FAMILY_NAMES[fam], "paths": paths}
            )
        return {"routes": out}

    def cmd_neighbor_reset(self, address: str, message: str = "") -> dict:
        self._neighbor(address).session.reset(message)
        return {"address": address, "action": "reset"}

    def cmd_neighbor_shutdown(self, address: str, message: str = "") -> dict:
        self._neighbor(address).session.stop(subcode=2, message=message)
        return {"address": address, "action": "shutdown"}

    def cmd_neighbor_enable(self, address: str, message: str = "") -> dict:
        s = self._neighbor(address).session
        if not s.enabled:
            s.start()
        return {"address": address, "action": "enable"}

    def cmd_neighbor_refresh(self, address: str, message: str = "", direction: str = "in") -> dict:
        n = self._neighbor(address)
        if not n.session.established:
            raise ValueError(f"neighbor {address} is not Established")
        fams = sorted(n.session.fsm.negotiated.families)
        for fam in fams:
            if direction in ("in", "both"):
                n.session.send_route_refresh(fam[0], fam[1])
            if direction in ("out", "both"):
                self._announce_networks(n, fam)
        return {"address": address, "action": "refresh", "direction": direction}

    def cmd_reload(self) -> dict:
        raise ValueError("live reload is not implemented yet: restart bgpd to apply a new config")


def _add_path_modes(ap, families) -> dict:
    """Normalize the add_path config into {family_name: "send"|"receive"|"both"}."""

    def mode(d) -> str | None:
        send = bool(getattr(d, "send", None) if not isinstance(d, dict) else d.get("send"))
        recv = bool(getattr(d, "receive", None) if not isinstance(d, dict) else d.get("receive"))
        if send and recv:
            return "both"
        if send:
            return "send"
        if recv:
            return "receive"
        return None

    out = {}
    per_family = ap if isinstance(ap, dict) else getattr(ap, "families", None)
    if isinstance(per_family, dict) and any(k in ("ipv4", "ipv6") for k in per_family):
        for fam, d in per_family.items():
            m = mode(d)
            if m:
                out[fam] = m
        return out
    m = mode(ap)
    if m:
        for fam in families:
            out[fam] = m
    return out


def _same_family(a: str, b: str) -> bool:
    return ipaddress.ip_address(a).version == ipaddress.ip_address(b).version


def _state_name(state: State) -> str:
    names = {
        "IDLE": "Idle",
        "CONNECT": "Connect",
        "ACTIVE": "Active",
        "OPENSENT": "OpenSent",
        "OPENCONFIRM": "OpenConfirm",
        "ESTABLISHED": "Established",
    }
    return names.get(state.name, state.name.title())


def _counts(stats, direction: str) -> dict:
    src = getattr(stats, f"messages_{direction}", None) or {}
    out = {k: 0 for k in ("open", "update", "notification", "keepalive", "route_refresh")}
    for k, v in dict(src).items():
        key = str(k).lower().replace("-", "_")
        out[key] = out.get(key, 0) + v
    out["total"] = sum(v for k, v in out.items() if k != "total")
    return out


def _as_path_str(path) -> str:
    parts = []
    for seg_type, asns in path or ():
        if SEGMENT_NAMES.get(seg_type) == "sequence":
            parts.extend(str(a) for a in asns)
        elif SEGMENT_NAMES.get(seg_type) == "set":
            parts.append("{" + ",".join(str(a) for a in asns) + "}")
        else:
            parts.append("(" + " ".join(str(a) for a in asns) + ")")
    return " ".join(parts)


def _nh_str(nh: bytes | None) -> str | None:
    if nh is None:
        return None
    if len(nh) == 32:
        return pfx.addr_to_str(nh[:16])
    return pfx.addr_to_str(nh)


def _path_json(attrs: AttrSet, source: str | None) -> dict:
    return {
        "best": False,
        "multipath": False,
        "from": source,
        "source": "bgp",
        "next_hop": _nh_str(attrs.next_hop),
        "as_path": _as_path_str(attrs.as_path),
        "origin": ORIGIN_NAMES[attrs.origin] if attrs.origin is not None else None,
        "med": attrs.med,
        "local_pref": attrs.local_pref,
        "communities": [f"{c >> 16}:{c & 0xFFFF}" for c in attrs.communities],
        "large_communities": [f"{a}:{b}:{c}" for a, b, c in attrs.large_communities],
        "originator_id": pfx.addr_to_str(attrs.originator_id) if attrs.originator_id else None,
        "cluster_list": [pfx.addr_to_str(c) for c in attrs.cluster_list],
        "lost_at": None,
    }


def _local_path() -> dict:
    return {
        "best": True,
        "multipath": False,
        "from": None,
        "source": "local",
        "next_hop": None,
        "as_path": "",
        "origin": "igp",
        "med": None,
        "local_pref": None,
        "communities": [],
        "large_communities": [],
        "originator_id": None,
        "cluster_list": [],
        "lost_at": None,
    }


async def _main(config, config_path, ready: asyncio.Event | None = None) -> int:
    loop = asyncio.get_running_loop()
    speaker = Speaker(config, config_path, loop)
    try:
        await speaker.start()
    except OSError as e:
        log.error("cannot start", error=str(e))
        await speaker.stop()
        return 1
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, speaker.stopping.set)
    if ready is not None:
        ready.set()
    _sd_notify("READY=1")
    await speaker.stopping.wait()
    _sd_notify("STOPPING=1")
    await speaker.stop()
    return 0


def _sd_notify(message: str) -> None:
    """systemd's notify protocol over $NOTIFY_SOCKET, without a dependency."""
    import socket

    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(path)
            s.sendall(message.encode())
    except OSError as e:
        log.warning("sd_notify failed", error=str(e))


def run(config, config_path: str | None = None, log_level: str = "info") -> int:
    """Run the daemon until SIGTERM/SIGINT; returns the exit status."""
    configure_logging(log_level)
    return asyncio.run(_main(config, config_path))

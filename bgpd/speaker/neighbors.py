"""Neighbors at run time: configured and dynamic, each a session plus the engine's peer."""

import dataclasses
import ipaddress
import time
from collections.abc import Mapping

import structlog

from bgpd.fsm import SessionSettings
from bgpd.fsm.settings import session_keys
from bgpd.session.listener import Listener
from bgpd.session.peer import PeerSession, Transport
from bgpd.session.tcp import ttl_for
from bgpd.wire.capabilities import GracefulRestart as GracefulRestartCap
from bgpd.wire.constants import (
    CEASE_PEER_DECONFIGURED,
    FAMILY_BY_NAME,
    IPV4_UNICAST,
    IPV6_UNICAST,
)

from .addresses import interface_address

log = structlog.get_logger("bgpd")


class Neighbor:
    """One neighbor: its configuration, its session and the route engine's peer."""

    __slots__ = (
        "cfg",
        "address",
        "session",
        "peer",
        "dynamic_from",
        "state_since",
        "bfd",
        "__weakref__",
    )

    def __init__(self, cfg, session: PeerSession, peer, dynamic_from: str | None = None) -> None:
        self.cfg = cfg
        self.address = str(cfg.address)
        self.session = session
        self.peer = peer
        self.dynamic_from = dynamic_from  # the dynamic_neighbors range it came from
        self.state_since = time.monotonic()
        self.bfd = None  # its BFD session's key (bgpd.bfd), when it has one

    def __repr__(self) -> str:
        return f"Neighbor({self.address!r})"


def same_family(a: str, b: str) -> bool:
    return ipaddress.ip_address(a).version == ipaddress.ip_address(b).version


class NeighborTable(Mapping):
    """Address -> :class:`Neighbor`, for configured neighbors and those made from a dynamic
    range's template; builds each one's session settings and transport from the config."""

    def __init__(self, speaker) -> None:
        self.speaker = speaker
        self._all: dict[str, Neighbor] = {}
        self.dynamic: list = []  # (network, DynamicNeighbors, Template, [addresses])
        self.refused = 0  # connections refused by a dynamic range's limit

    def __getitem__(self, address: str) -> Neighbor:
        return self._all[address]

    def __iter__(self):
        return iter(self._all)

    def __len__(self) -> int:
        return len(self._all)

    # --- config to runtime objects ------------------------------------------------------------

    def local_as_for(self, cfg) -> int:
        return cfg.local_as or self.speaker.config.asn

    def settings_for(self, cfg, asn_mode=None) -> SessionSettings:
        config = self.speaker.config
        fams = tuple(FAMILY_BY_NAME[f] for f in cfg.families)
        add_path = {}
        for fam_name in cfg.families:
            mode = cfg.add_path.mode(fam_name)
            if mode:
                add_path[FAMILY_BY_NAME[fam_name]] = mode
        kwargs = dict(
            local_as=self.local_as_for(cfg),
            peer_as=None if asn_mode in ("any", "external") else cfg.asn,
            router_id=str(config.router_id),
            hold_time=cfg.hold_time,
            connect_retry=cfg.connect_retry,
            passive=cfg.passive,
            delay_open=cfg.delay_open,
            families=fams,
            route_refresh=cfg.route_refresh,
            extended_message=cfg.extended_message,
            four_octet_as=cfg.four_octet_as,
            add_path=add_path,
        )
        if cfg.keepalive is not None:
            kwargs["keepalive"] = cfg.keepalive
        kwargs.update(session_keys(cfg))  # restart timing, next-hop rules (the FSM's alone)
        gr = config.graceful_restart
        if gr is not None and gr.enabled:
            # R bit while our own restart is in progress; forwarding preserved per family when
            # the kernel keeps our routes across the restart (or there is no FIB to lose).
            kernel = config.kernel
            forwarding = kernel is None or not kernel.install or kernel.persist
            kwargs["graceful_restart"] = GracefulRestartCap(
                restart_time=cfg.restart_time(gr),  # its own, else the router's
                restarting=self.speaker.rde.restarting,
                notification=gr.notification,
                families=tuple((a, sf, forwarding) for a, sf in fams),
            )
        return SessionSettings(**kwargs)

    def next_hops(self, n: Neighbor, neg, local: str | None) -> dict | None:
        """Our next hop per family on ``n``'s session: the configured ``next_hop_ipv4`` /
        ``next_hop_ipv6``, else the session's local address for its own family, for the
        other family the IPv6 address itself with RFC 8950 (IPv4 routes over IPv6), or an
        address of the session's interface (bgpd/speaker/addresses.py); None when nothing
        differs from the local address."""
        cfg = n.cfg
        if local is None:
            return None
        v6 = ":" in local
        fams = neg.families
        want4, want6 = IPV4_UNICAST in fams, IPV6_UNICAST in fams
        if not (cfg.next_hop_ipv4 or cfg.next_hop_ipv6 or (v6 and want4) or (not v6 and want6)):
            return None
        packed = ipaddress.ip_address(local.split("%")[0]).packed
        hops: dict = {}
        if cfg.next_hop_ipv4:
            hops[IPV4_UNICAST] = ipaddress.ip_address(cfg.next_hop_ipv4).packed
        elif not v6:
            hops[IPV4_UNICAST] = packed
        elif IPV4_UNICAST in neg.context.extended_next_hop:
            hops[IPV4_UNICAST] = packed  # RFC 8950: IPv4 routes over our IPv6 address
        elif want4:
            hops[IPV4_UNICAST] = interface_address(local, 4)
        if cfg.next_hop_ipv6:
            hops[IPV6_UNICAST] = ipaddress.ip_address(cfg.next_hop_ipv6).packed
        elif v6:
            hops[IPV6_UNICAST] = packed
        elif want6:
            hops[IPV6_UNICAST] = interface_address(local, 6)
        for fam, nh in hops.items():
            if nh is None and fam in fams:
                log.warning(
                    "no next hop of ours for a family of this session: its routes are not "
                    "sent with one (set next_hop_ipv4 / next_hop_ipv6)",
                    peer=n.address,
                    family="ipv4" if fam == IPV4_UNICAST else "ipv6",
                    local=local,
                )
        return hops

    def _default_source(self, cfg) -> str | None:
        """Without ``source_address``, connect from our listen address of the same family
        (when there is exactly one), so that the peer sees the address it has configured."""
        listen = self.speaker.config.listen
        same = [str(x.address) for x in listen if same_family(str(x.address), str(cfg.address))]
        return same[0] if len(set(same)) == 1 else None

    def transport_for(self, cfg) -> Transport:
        ebgp = cfg.asn != self.local_as_for(cfg)
        ttl, min_ttl = ttl_for(ebgp, cfg.ttl_security, cfg.multihop)
        local = str(cfg.source_address) if cfg.source_address else self._default_source(cfg)
        return Transport(
            remote_address=str(cfg.address),
            remote_port=cfg.port,
            local_address=local,
            password=cfg.password,
            ttl=ttl,
            min_ttl=min_ttl,
            connect_timeout=min(float(cfg.connect_retry), 30.0),
        )

    # --- adding and removing ------------------------------------------------------------------

    def add(self, cfg, dynamic_from: str | None = None, asn_mode=None) -> Neighbor:
        """A neighbor, its session (not started) and its peer in the route engine."""
        sp = self.speaker
        session = PeerSession(
            self.settings_for(cfg, asn_mode), self.transport_for(cfg), sp, sp.loop
        )
        peer = sp.rde.add_peer(
            cfg,
            local_as=self.local_as_for(cfg),
            dynamic=dynamic_from is not None,
            asn_mode=asn_mode,
            link=session,
            filters=sp.bird.filters_for(str(cfg.address)) if sp.bird is not None else None,
        )
        n = Neighbor(cfg, session, peer, dynamic_from)
        session.owner = n
        session.tap = sp.monitor.tap
        self._all[n.address] = n
        sp.bfd.attach(n)
        return n

    def remove(self, n: Neighbor, subcode: int = 3, message: str = "") -> None:
        """Close a neighbor's session, withdraw its routes, forget it."""
        self.speaker.monitor.removed(n, deconfigured=subcode == CEASE_PEER_DECONFIGURED)
        n.session.close(subcode=subcode, message=message)
        self.speaker.bfd.detach(n)
        self.speaker.rde.remove_peer(n.peer)
        if self._all.get(n.address) is n:
            del self._all[n.address]
        for _net, _d, _t, members in self.dynamic:
            if n.address in members:
                members.remove(n.address)
        self.speaker.kick()

    def update_opens(self) -> None:
        """The OPEN of every next connection follows the restart state (the R bit)."""
        for n in self._all.values():
            n.session.update_settings(self.settings_for(n.cfg, n.peer.asn_mode))

    # --- dynamic neighbors --------------------------------------------------------------------

    def set_dynamic(self, config) -> None:
        old = {str(net): members for net, _d, _t, members in self.dynamic}
        self.dynamic = []
        for d in config.dynamic_neighbors:
            net = ipaddress.ip_network(d.range)
            self.dynamic.append((net, d, config.templates[d.template], old.get(str(net), [])))

    def lookup(self, address: str):
        """The session for a connection from ``address`` (the listener asks), or None."""
        n = self._all.get(address)
        if n is not None:
            return n.session
        return self._dynamic_neighbor(address)

    def _dynamic_neighbor(self, address: str):
        """A connection from inside a dynamic range: make a passive neighbor from its template.

        The limit is checked before anything is allocated; refusals are counted, not logged
        per connection.
        """
        if not self.dynamic:
            return None
        ip = ipaddress.ip_address(address)
        for net, d, tpl, members in self.dynamic:
            if ip.version != net.version or ip not in net:
                continue
            if len(members) >= d.limit:
                self.refused += 1
                if self.refused in (1, 10, 100) or self.refused % 1000 == 0:
                    log.warning(
                        "dynamic neighbor limit reached",
                        range=str(net),
                        limit=d.limit,
                        refused=self.refused,
                    )
                return None
            mode = tpl.asn
            asn = mode if isinstance(mode, int) else self.speaker.config.asn
            cfg = dataclasses.replace(
                tpl.neighbor, address=address, asn=asn, passive=True, template=tpl.name
            )
            n = self.add(cfg, dynamic_from=str(net), asn_mode=mode)
            members.append(address)
            n.session.start()
            log.info("dynamic neighbor", peer=address, range=str(net), template=tpl.name)
            return n.session
        return None

    # --- listeners ----------------------------------------------------------------------------

    def start_listeners(self) -> list:
        sp = self.speaker
        cfg = sp.config
        gtsm = any(n.ttl_security for n in cfg.neighbors)
        out = []
        for lcfg in cfg.listen:
            lst = Listener(str(lcfg.address), lcfg.port, self.lookup, sp.loop)
            for n in cfg.neighbors:
                if n.password and same_family(str(n.address), str(lcfg.address)):
                    lst.md5[str(n.address)] = n.password
            for net, _d, tpl, _members in self.dynamic:
                pw = tpl.neighbor.password
                if pw and same_family(str(net.network_address), str(lcfg.address)):
                    lst.md5_ranges[str(net)] = pw
            lst.start()
            if gtsm:
                lst.set_ttl(255)
            out.append(lst)
        return out

    def set_listener_keys(self, lst: Listener) -> None:
        for n in self._all.values():
            if (
                n.dynamic_from is None
                and same_family(n.address, lst.address)
                and lst.md5.get(n.address) != n.cfg.password
            ):
                lst.set_md5(n.address, n.cfg.password)

"""Our OPEN, the checks on the peer's OPEN, and what the two agree on (RFC 4271 §6.2, RFC 5492).

Pure functions of the settings and the two OPEN messages: :func:`negotiate` either returns a
:class:`Negotiated` or raises the :class:`~bgpd.wire.BGPError` whose code, subcode and data go
into the NOTIFICATION.
"""

import ipaddress
from dataclasses import dataclass

from ..wire import BGPError, Context, Open
from ..wire.capabilities import (
    FQDN,
    AddPath,
    EnhancedRouteRefresh,
    ExtendedMessage,
    ExtendedNextHop,
    FourOctetAS,
    GracefulRestart,
    LongLivedGR,
    Multiprotocol,
    RouteRefresh,
    encode_capability,
)
from ..wire.constants import (
    AFI_IPV6,
    CAP_ROUTE_REFRESH,
    CAP_ROUTE_REFRESH_CISCO,
    ERR_OPEN,
    IPV4_UNICAST,
    OPEN_BAD_BGP_ID,
    OPEN_BAD_PEER_AS,
    OPEN_UNACCEPTABLE_HOLD_TIME,
    OPEN_UNSUPPORTED_CAPABILITY,
)
from ..wire.errors import Action
from .settings import ADD_PATH_MODES, SessionSettings

_RECEIVE = 1
_SEND = 2


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What both speakers agreed on when the peer's OPEN was accepted.

    ``context`` is the codec context for this session's UPDATEs (both directions).
    ``families`` is the intersection of both multiprotocol sets (a peer without any
    multiprotocol capability implies IPv4 unicast); it may be empty: the session is kept up
    with nothing negotiated, as BIRD does, and the RIB ignores every family not listed.
    ``keepalive`` is 0 when ``hold_time`` is 0 (no KEEPALIVEs, no hold timer).
    ``graceful_restart``/``long_lived_gr`` are the peer's capabilities, None when absent.
    ``route_refresh``/``enhanced_route_refresh`` are True when both sides advertised them.
    """

    context: Context
    families: frozenset
    hold_time: int
    keepalive: float
    local_open: Open
    peer_open: Open
    peer_asn: int
    peer_router_id: str
    four_octet_as: bool
    route_refresh: bool
    enhanced_route_refresh: bool
    graceful_restart: GracefulRestart | None
    long_lived_gr: LongLivedGR | None
    fqdn: FQDN | None

    @property
    def ibgp(self) -> bool:
        return self.context.ibgp

    @property
    def extended_message(self) -> bool:
        return self.context.extended_message


def build_open(settings: SessionSettings) -> Open:
    """The OPEN we send, with every capability the settings enable."""
    caps: list = [Multiprotocol(afi, safi) for afi, safi in settings.families]
    if settings.route_refresh:
        caps.append(RouteRefresh())
    if settings.enhanced_route_refresh:
        caps.append(EnhancedRouteRefresh())
    if settings.extended_message:
        caps.append(ExtendedMessage())
    if settings.four_octet_as:
        caps.append(FourOctetAS(settings.local_as))
    if settings.add_path:
        entries = tuple(
            (afi, safi, ADD_PATH_MODES[mode])
            for (afi, safi), mode in sorted(settings.add_path.items())
        )
        caps.append(AddPath(entries))
    if settings.extended_next_hop:
        caps.append(
            ExtendedNextHop(
                tuple((afi, safi, AFI_IPV6) for afi, safi in settings.extended_next_hop)
            )
        )
    if settings.graceful_restart is not None:
        caps.append(settings.graceful_restart)
    if settings.long_lived_gr is not None:
        caps.append(settings.long_lived_gr)
    fqdn = settings.fqdn_capability()
    if fqdn is not None:
        caps.append(fqdn)
    return Open(
        asn=settings.local_as,
        hold_time=settings.hold_time,
        router_id=settings.router_id,
        capabilities=tuple(caps),
    )


def keepalive_interval(settings: SessionSettings, hold_time: int) -> float:
    """The configured keepalive, or a third of the hold time, and never more than that third
    (in whole seconds, at least 1); 0 when the hold time is 0."""
    if hold_time == 0:
        return 0
    limit = max(1, hold_time // 3)
    if settings.keepalive is None:
        return limit
    return min(settings.keepalive, limit)


def _first(caps, cls):
    for c in caps:
        if isinstance(c, cls):
            return c
    return None


def _addpath_modes(caps) -> dict:
    """Family -> send/receive bits, merged over every ADD-PATH capability present."""
    out: dict = {}
    for c in caps:
        if isinstance(c, AddPath):
            for afi, safi, sr in c.entries:
                out[(afi, safi)] = out.get((afi, safi), 0) | sr
    return out


def check_peer_as(settings: SessionSettings, peer: Open) -> int:
    """The peer's AS (RFC 6793: the four-octet capability's when present), checked against the
    configuration: 2/2 Bad Peer AS with the AS as received (4 or 2 octets) as data, like BIRD.

    A speaker without the capability can only have a 2-octet AS: its field reads AS_TRANS (or
    anything else) and never matches a configured AS above 65535.
    """
    cap_as = peer.four_octet_as
    if cap_as is not None:
        asn, data = cap_as, cap_as.to_bytes(4, "big")
    else:
        asn = peer.my_as_field if peer.my_as_field is not None else peer.asn
        data = (asn & 0xFFFF).to_bytes(2, "big")
    if not settings.accepts_any_as and asn != settings.peer_as:
        raise BGPError(
            ERR_OPEN,
            OPEN_BAD_PEER_AS,
            data,
            Action.RESET,
            f"peer AS {asn}, expected {settings.peer_as}",
        )
    return asn


def negotiate(
    settings: SessionSettings, local: Open, peer: Open, loopback: bool = False
) -> Negotiated:
    """Check the peer's OPEN (RFC 4271 §6.2, RFC 5492, RFC 6286) and negotiate capabilities.

    ``loopback``: the connection runs between two loopback addresses (the peer is this host),
    which makes its loopback next hops usable unless the settings say otherwise.

    The codec already rejected version != 4 (2/1), hold time 1 or 2 (2/6) and the identifier
    0.0.0.0 (2/3). Raises BGPError 2/2, 2/3, 2/6 or 2/7.
    """
    peer_asn = check_peer_as(settings, peer)
    ibgp = peer_asn == settings.local_as

    # RFC 6286 §2.2: the identifier must differ from ours within an AS; eBGP may share it.
    if ibgp and peer.router_id == settings.router_id:
        raise BGPError(
            ERR_OPEN,
            OPEN_BAD_BGP_ID,
            ipaddress.IPv4Address(peer.router_id).packed,
            Action.RESET,
            f"BGP identifier {peer.router_id} is ours",
        )
    if peer.hold_time in (1, 2):  # the codec checks this too; keep the FSM self-contained
        raise BGPError(
            ERR_OPEN,
            OPEN_UNACCEPTABLE_HOLD_TIME,
            peer.hold_time.to_bytes(2, "big"),
            Action.RESET,
            f"hold time {peer.hold_time}",
        )

    caps = peer.capabilities
    codes = {c.code for c in caps}
    missing = [code for code in settings.required_capabilities if code not in codes]
    if missing:
        # RFC 5492 §3: the data lists the capabilities as they would appear in an OPEN.
        data = b""
        for code in missing:
            ours = [c for c in local.capabilities if c.code == code]
            if ours:
                data += b"".join(encode_capability(c) for c in ours)
            else:
                data += bytes((code, 0))
        raise BGPError(
            ERR_OPEN,
            OPEN_UNSUPPORTED_CAPABILITY,
            data,
            Action.RESET,
            f"required capabilities missing: {missing}",
        )

    hold = min(local.hold_time, peer.hold_time)

    peer_families = {(c.afi, c.safi) for c in caps if isinstance(c, Multiprotocol)}
    if not peer_families:
        peer_families = {IPV4_UNICAST}  # RFC 4760 §8: no capability means IPv4 unicast only
    families = frozenset(settings.families) & peer_families

    ours_ap = {fam: ADD_PATH_MODES[mode] for fam, mode in settings.add_path.items()}
    theirs_ap = _addpath_modes(caps)
    # RFC 7911 §4: we receive path ids for F if we said "receive" and the peer said "send".
    add_path_rx = frozenset(
        f for f in families if ours_ap.get(f, 0) & _RECEIVE and theirs_ap.get(f, 0) & _SEND
    )
    add_path_tx = frozenset(
        f for f in families if ours_ap.get(f, 0) & _SEND and theirs_ap.get(f, 0) & _RECEIVE
    )

    four_octet = settings.four_octet_as and peer.four_octet_as is not None
    extended_message = settings.extended_message and _first(caps, ExtendedMessage) is not None
    peer_enh = set()
    for c in caps:
        if isinstance(c, ExtendedNextHop):
            peer_enh.update((a, s) for a, s, nh in c.entries if nh == AFI_IPV6)
    extended_next_hop = frozenset(settings.extended_next_hop) & peer_enh & families

    context = Context(
        as4=four_octet,
        add_path_rx=add_path_rx,
        add_path_tx=add_path_tx,
        extended_message=extended_message,
        ibgp=ibgp,
        extended_next_hop=extended_next_hop,
        loopback_next_hop=settings.accepts_loopback_next_hop(loopback),
        pool=settings.pool,
    )
    return Negotiated(
        context=context,
        families=families,
        hold_time=hold,
        keepalive=keepalive_interval(settings, hold),
        local_open=local,
        peer_open=peer,
        peer_asn=peer_asn,
        peer_router_id=peer.router_id,
        four_octet_as=four_octet,
        route_refresh=settings.route_refresh
        and bool(codes & {CAP_ROUTE_REFRESH, CAP_ROUTE_REFRESH_CISCO}),
        enhanced_route_refresh=settings.enhanced_route_refresh
        and _first(caps, EnhancedRouteRefresh) is not None,
        graceful_restart=_first(caps, GracefulRestart),
        long_lived_gr=_first(caps, LongLivedGR),
        fqdn=_first(caps, FQDN),
    )


def resolve_collision(
    local_router_id: str,
    remote_router_id: str,
    local_as: int | None = None,
    remote_as: int | None = None,
) -> str:
    """Which of two colliding connections to keep (RFC 4271 §6.8, RFC 6286 §2.3).

    The connection initiated by the speaker with the higher BGP identifier survives: if ours is
    lower, keep the one the peer initiated (``"keep_inbound"``), else ours
    (``"keep_outbound"``). Equal identifiers (possible between ASes) are broken by the larger
    AS number; with equal or unknown AS numbers too, raises ValueError.
    """
    local = int(ipaddress.IPv4Address(local_router_id))
    remote = int(ipaddress.IPv4Address(remote_router_id))
    if local == remote:
        if local_as is None or remote_as is None or local_as == remote_as:
            raise ValueError(f"collision between equal identifiers {local_router_id}")
        local, remote = local_as, remote_as
    return "keep_inbound" if local < remote else "keep_outbound"


__all__ = [
    "Negotiated",
    "build_open",
    "check_peer_as",
    "keepalive_interval",
    "negotiate",
    "resolve_collision",
]

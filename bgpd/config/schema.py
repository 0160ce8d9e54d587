"""The config schema: one frozen dataclass per section, one field per YAML key.

Each field is declared with :func:`key`, which records its checker, its default and its
documentation. Adding a key to the config is adding one field here (and a line in
docs/configuration.md, which a test checks). Checks that involve several keys live in the
section's validator at the end of this module.
"""

import difflib
import ipaddress
from dataclasses import dataclass
from typing import Any

from bgpd.rib import filters

from . import checks
from .checks import FAMILIES, Checker, describe
from .errors import Invalid
from .fields import Sections, join_key, key, mapping_of, section, unknown_key_reason
from .services import Service, services

DEFAULT_CONTROL_SOCKET = "/run/bgpd/bgpd.sock"
DEFAULT_HOLD_TIME = 90
DEFAULT_CONNECT_RETRY = 30


# --- checkers that only make sense for one key ---------------------------------------------


def _hold_time(value: Any) -> int:
    value = checks.integer(0, 65535)(value)
    if value in (1, 2):
        raise Invalid(f"{value} is not allowed: use 0 (no keepalives) or 3..65535 (RFC 4271 §4.2)")
    return value


def _error_wait(value: Any) -> tuple[int, int]:
    """``[min, max]``: the first wait after an error, doubled per consecutive error up to max."""
    if isinstance(value, bool) or not isinstance(value, list | tuple) or len(value) != 2:
        got = f"{len(value)} values" if isinstance(value, list | tuple) else describe(value)
        raise Invalid(f"expected [min, max] (two integers of seconds), got {got}")
    lo, hi = (checks.integer(0, 65535)(v) for v in value)
    if lo > hi:
        raise Invalid(f"min {lo} is greater than max {hi}")
    if hi == 0:
        raise Invalid("max 0 would restart a failing session at once, forever: use max >= 1")
    return (lo, hi)


LOOPBACK_NEXT_HOP = ("auto", "accept", "reject")


def _loopback_next_hop(value: Any) -> str:
    if value not in LOOPBACK_NEXT_HOP:
        raise Invalid(f"expected one of {', '.join(LOOPBACK_NEXT_HOP)}, got {describe(value)}")
    return value


def _policy_names(value: Any) -> tuple[str, ...]:
    """A policy name or a list of them (checked against ``policies`` by the validator)."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise Invalid(f"expected a policy name or a list of names, got {describe(value)}")
    return tuple(value)


def _address_of(version: int) -> Checker:
    def check(value: Any) -> str:
        text = checks.ip_address(value)
        if ipaddress.ip_address(text).version != version:
            raise Invalid(f"expected an IPv{version} address, got {text}")
        return text

    return check


def _bfd(value: Any):
    """A ``bfd:`` section (bgpd/bfd/config.py): a BfdConfig, or None for no BFD."""
    from bgpd.bfd.config import BfdConfigError, parse

    try:
        return parse(value)
    except BfdConfigError as e:
        raise Invalid(e.reason, e.key or None) from None


def _mrt(value: Any):
    """The ``mrt`` section (docs/monitoring.md), checked by the MRT package."""
    from bgpd.mrt.config import check_mrt

    return check_mrt(value)


def _bmp(value: Any) -> tuple:
    """The ``bmp`` stations (docs/monitoring.md), checked by the BMP package."""
    from bgpd.bmp.config import check_bmp

    return check_bmp(value)


def _policies(value: Any) -> dict:
    """The ``policies`` map, compiled once here so that errors name the key."""
    from bgpd.policy import PolicyError, compile_policies

    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f"expected a mapping of policy names, got {describe(value)}")
    try:
        compile_policies(value)
    except PolicyError as e:
        path = e.key_path
        if path.startswith("policies."):
            path = path[len("policies.") :]
        raise Invalid(e.reason, path) from None
    return value


@dataclass(frozen=True, kw_only=True)
class MaxPrefixes:
    """``max_prefixes``: what to do when a neighbor sends more prefixes than ``limit``."""

    limit: int
    action: str = "stop"
    restart_after: int | None = None


def _max_prefixes(value: Any) -> "MaxPrefixes | None":
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = {"limit": value}
    if not isinstance(value, dict):
        raise Invalid(
            f"expected {{limit: N, action: warn|stop, restart_after: S}}, got {describe(value)}"
        )
    for k in value:
        if k not in ("limit", "action", "restart_after"):
            raise Invalid("unknown key (known keys: limit, action, restart_after)", str(k))
    if "limit" not in value:
        raise Invalid("required key is missing", "limit")
    try:
        limit = checks.integer(1, 2**32 - 1)(value["limit"])
    except Invalid as e:
        raise Invalid(e.reason, "limit") from None
    action = value.get("action", "stop")
    if action not in ("warn", "stop"):
        raise Invalid(f"expected warn or stop, got {describe(action)}", "action")
    restart = value.get("restart_after")
    if restart is not None:
        try:
            restart = checks.integer(1, 86400)(restart)
        except Invalid as e:
            raise Invalid(e.reason, "restart_after") from None
    return MaxPrefixes(limit=limit, action=action, restart_after=restart)


@dataclass(frozen=True, kw_only=True)
class Metrics:
    """``metrics``: where the HTTP listener for /metrics, /livez and /readyz runs."""

    address: str = "127.0.0.1"
    port: int = 9179


def _metrics(value: Any) -> "Metrics | None":
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid(f"expected {{address: ADDRESS, port: PORT}} or null, got {describe(value)}")
    for k in value:
        if k not in ("address", "port"):
            raise Invalid(unknown_key_reason(k, ("address", "port")), str(k))
    out = {}
    for k, check in (("address", checks.ip_address), ("port", checks.integer(1, 65535))):
        if k in value:
            try:
                out[k] = check(value[k])
            except Invalid as e:
                raise Invalid(e.reason, k) from None
    return Metrics(**out)


def _control_socket(value: Any) -> str:
    value = checks.string()(value)
    if len(value.encode()) > 107:
        raise Invalid("longer than 107 octets, the limit for a Unix socket path")
    return value


def _networks(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise Invalid(f"expected a list of prefixes, got {describe(value)}")
    seen: dict[str, int] = {}
    for i, item in enumerate(value):
        try:
            net = checks.network(item)
        except Invalid as e:
            raise Invalid(e.reason, f"[{i}]")
        if net in seen:
            raise Invalid(f"{net} is listed twice (also networks[{seen[net]}])", f"[{i}]")
        seen[net] = i
    return tuple(seen)


@dataclass(frozen=True)
class AddPath:
    """ADD-PATH (RFC 7911): the families for which several paths per prefix are sent or
    received."""

    send: frozenset[str] = frozenset()
    receive: frozenset[str] = frozenset()

    def mode(self, family: str) -> str | None:
        """``"send"``, ``"receive"``, ``"both"`` or None for ``family`` (``"ipv4"``...)."""
        send, receive = family in self.send, family in self.receive
        if send and receive:
            return "both"
        return "send" if send else "receive" if receive else None


_ADD_PATH_DIRECTIONS = ("send", "receive")


def _add_path_directions(value: Any, where: str) -> tuple[bool, bool]:
    """``{send: B, receive: B}`` at key ``where`` (relative to ``add_path``)."""
    prefix = f"{where}." if where else ""
    if not isinstance(value, dict):
        raise Invalid(
            f"expected a mapping like {{send: true, receive: true}}, got {describe(value)}",
            where or None,
        )
    for k in value:
        if k not in _ADD_PATH_DIRECTIONS:
            raise Invalid(unknown_key_reason(k, _ADD_PATH_DIRECTIONS), f"{prefix}{k}")
    out = []
    for direction in _ADD_PATH_DIRECTIONS:
        try:
            out.append(checks.boolean(value.get(direction, False)))
        except Invalid as e:
            raise Invalid(e.reason, f"{prefix}{direction}")
    return out[0], out[1]


def _add_path(value: Any, families: tuple[str, ...]) -> AddPath:
    """``{send: B, receive: B}`` for every family, or ``{ipv4: {...}, ipv6: {...}}``."""
    if value is None:
        return AddPath()
    if not isinstance(value, dict) or all(k in _ADD_PATH_DIRECTIONS for k in value):
        send, receive = _add_path_directions(value, "")
        every = frozenset(families)
        return AddPath(every if send else frozenset(), every if receive else frozenset())
    send_fams, receive_fams = set(), set()
    for k, v in value.items():
        if k in _ADD_PATH_DIRECTIONS:
            raise Invalid("write either {send, receive} or per family {ipv4: ..., ipv6: ...}", k)
        if k not in FAMILIES:
            raise Invalid(unknown_key_reason(k, FAMILIES + _ADD_PATH_DIRECTIONS), str(k))
        if k not in families:
            raise Invalid(f"{k} is not one of this neighbor's families {list(families)}", k)
        send, receive = _add_path_directions(v, k)
        if send:
            send_fams.add(k)
        if receive:
            receive_fams.add(k)
    return AddPath(frozenset(send_fams), frozenset(receive_fams))


# --- kernel and host routes (bgpd/kernel, docs/kernel.md) -----------------------------------


def _list_of(check_item: Checker, what: str) -> Checker:
    def check(value: Any) -> tuple:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise Invalid(f"expected a list of {what}, got {describe(value)}")
        out = []
        for i, item in enumerate(value):
            try:
                out.append(check_item(item))
            except Invalid as e:
                raise Invalid(e.reason, join_key(f"[{i}]", e.key)) from None
        return tuple(out)

    return check


RT_TABLE_NAMES = {"main": 254, "default": 253, "local": 255}
# iproute2's /etc/iproute2/rt_protos names (0..2 are the kernel's own: not for us)
RT_PROTO_NAMES = {
    "boot": 3,
    "static": 4,
    "gated": 8,
    "ra": 9,
    "mrt": 10,
    "zebra": 11,
    "bird": 12,
    "dnrouted": 13,
    "xorp": 14,
    "ntk": 15,
    "dhcp": 16,
    "keepalived": 18,
    "babel": 42,
    "openr": 99,
    "bgp": 186,
    "isis": 187,
    "ospf": 188,
    "rip": 189,
    "eigrp": 192,
}


def _rt_table(value: Any) -> int:
    if isinstance(value, str) and value in RT_TABLE_NAMES:
        return RT_TABLE_NAMES[value]
    if isinstance(value, str):
        raise Invalid(f"unknown table {value!r} (main, default, local, or a number)")
    return checks.integer(1, 2**32 - 1)(value)


def _rt_protocol(value: Any) -> int:
    if isinstance(value, str):
        if value in RT_PROTO_NAMES:
            return RT_PROTO_NAMES[value]
        close = difflib.get_close_matches(value, list(RT_PROTO_NAMES), n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else " (bgp, bird, zebra... or 3..255)"
        raise Invalid(f"unknown protocol {value!r}{hint}")
    return checks.integer(3, 255)(value)


def _prefix_entries(value: Any) -> tuple[str, ...]:
    """``["10.244.0.0/16 le 32", ...]``: the prefix-list grammar (bgpd/rib/filters.py)."""
    if not isinstance(value, list):
        raise Invalid(f"expected a list of prefixes like '10.0.0.0/8 le 32', got {describe(value)}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise Invalid(
                f"expected a prefix like '10.0.0.0/8 le 32', got {describe(item)}", f"[{i}]"
            )
        try:
            filters.parse_prefix_entry(item)
        except ValueError as e:
            raise Invalid(str(e), f"[{i}]") from None
        out.append(" ".join(item.split()))
    return tuple(out)


def _interface_globs(value: Any) -> tuple[str, ...]:
    """``["-cali*", "-kube-ipvs*", "*"]``: ordered globs, the first match decides."""
    if not isinstance(value, list) or not value:
        raise Invalid(f"expected a non-empty list of interface globs, got {describe(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise Invalid(f"expected an interface name or glob, got {describe(item)}", f"[{i}]")
        try:
            filters.parse_interface_glob(item)
        except ValueError as e:
            raise Invalid(str(e), f"[{i}]") from None
    return tuple(v.strip() for v in value)


@dataclass(frozen=True, kw_only=True)
class Kernel:
    """``kernel``: install the best routes into a kernel table (absent: bgpd never does)."""

    table: int = key(_rt_table, 254, doc="kernel table: main, default, local or 1..2^32-1")
    protocol: int = key(_rt_protocol, 186, doc="rtproto id our routes carry (name or 3..255)")
    metric: int = key(checks.integer(0, 2**32 - 1), 0, doc="metric (priority) of our routes")
    install: bool = key(checks.boolean, True, doc="install routes (false: learn only)")
    persist: bool = key(checks.boolean, True, doc="leave our routes installed when bgpd exits")
    sweep_timeout: int = key(
        checks.integer(0, 3600), 60, doc="longest wait before stale routes are swept"
    )
    import_policy: tuple[str, ...] = key(
        _policy_names, (), doc="policies a route must pass to be installed", name="import"
    )


@dataclass(frozen=True, kw_only=True)
class HostKernelRoutes:
    """``host_routes.kernel``: learn other programs' routes from the kernel table."""

    learn: bool = key(checks.boolean, True, doc="learn alien routes")
    prefixes: tuple[str, ...] = key(_prefix_entries, doc="which prefixes to learn")


@dataclass(frozen=True, kw_only=True)
class HostConnected:
    """``host_routes.connected``: the networks of interface addresses."""

    interfaces: tuple[str, ...] = key(_interface_globs, ("*",), doc="ordered interface globs")


_STATIC_KINDS = ("blackhole", "unreachable", "prohibit")


@dataclass(frozen=True, kw_only=True)
class StaticRoute:
    """One ``host_routes.static`` entry."""

    prefix: str = key(checks.network, doc="the route's prefix")
    blackhole: bool = key(checks.boolean, False, doc="drop silently")
    unreachable: bool = key(checks.boolean, False, doc="drop with ICMP unreachable")
    prohibit: bool = key(checks.boolean, False, doc="drop with ICMP prohibited")
    via: str | None = key(checks.optional(checks.ip_address), None, doc="gateway")
    interface: str | None = key(checks.optional(checks.string(15)), None, doc="device")

    @property
    def type(self) -> str:
        for kind in _STATIC_KINDS:
            if getattr(self, kind):
                return kind
        return "unicast"


def _check_static(s: StaticRoute, given: frozenset) -> None:
    kinds = [k for k in _STATIC_KINDS if getattr(s, k)]
    if len(kinds) > 1:
        raise Invalid(f"{' and '.join(kinds)} exclude each other", kinds[1])
    if kinds and (s.via is not None or s.interface is not None):
        raise Invalid(f"a {kinds[0]} route has no gateway or interface", kinds[0])
    if not kinds and s.via is None and s.interface is None:
        raise Invalid(
            "a static route needs one of blackhole, unreachable, prohibit, via or interface"
        )
    if s.via is not None:
        if "%" in s.via:
            raise Invalid("write the interface as interface:, not as a %zone", "via")
        if checks.address_family(s.via) != checks.address_family(s.prefix.split("/")[0]):
            raise Invalid(f"{s.via} is not of the same family as {s.prefix}", "via")


@dataclass(frozen=True, kw_only=True)
class HostRoutes:
    """``host_routes``: routes from the host into the RIB (docs/kernel.md)."""

    kernel: HostKernelRoutes | None = key(
        checks.optional(mapping_of(HostKernelRoutes)), None, doc="learn kernel routes"
    )
    connected: HostConnected | None = key(
        checks.optional(mapping_of(HostConnected)), None, doc="learn connected networks"
    )
    static: tuple[StaticRoute, ...] = key(
        _list_of(mapping_of(StaticRoute, _check_static), "static routes"),
        (),
        doc="static routes",
    )


def _check_host_routes(h: HostRoutes, given: frozenset) -> None:
    seen: dict[str, int] = {}
    for i, s in enumerate(h.static):
        if s.prefix in seen:
            raise Invalid(
                f"{s.prefix} is listed twice (also static[{seen[s.prefix]}])", f"static[{i}]"
            )
        seen[s.prefix] = i


# --- sections -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Listen:
    address: str = key(checks.ip_address, doc="local address to accept BGP connections on")
    port: int = key(checks.integer(1, 65535), 179, doc="TCP port")


@dataclass(frozen=True, kw_only=True)
class Neighbor:
    address: str = key(checks.peer_address, doc="the neighbor's address", session=True)
    asn: int = key(checks.asn, doc="the neighbor's AS number", session=True)
    port: int = key(checks.integer(1, 65535), 179, doc="TCP port to connect to", session=True)
    passive: bool = key(
        checks.boolean, False, doc="only accept connections, never connect", session=True
    )
    source_address: str | None = key(
        checks.optional(checks.ip_address), None, doc="local address to bind", session=True
    )
    hold_time: int = key(
        _hold_time, DEFAULT_HOLD_TIME, doc="proposed hold time", session=True, inherit=True
    )
    keepalive: int | None = key(
        checks.optional(checks.integer(1, 65535)),
        None,
        doc="keepalive interval (null: a third of the hold time)",
        session=True,
        inherit=True,
    )
    connect_retry: int = key(
        checks.integer(1, 65535), DEFAULT_CONNECT_RETRY, doc="ConnectRetry time", inherit=True
    )
    delay_open: int = key(checks.integer(0, 65535), 0, doc="DelayOpen time (RFC 4271 §8), 0: off")
    connect_delay: int = key(
        checks.integer(0, 65535), 0, doc="seconds before the first connection attempt of a start"
    )
    error_wait: tuple[int, int] = key(
        _error_wait, (5, 120), doc="[min, max] wait before restarting after an error"
    )
    error_forget: int = key(
        checks.integer(0, 65535), 300, doc="errors this long ago no longer lengthen error_wait"
    )
    loopback_next_hop: str = key(
        _loopback_next_hop,
        "auto",
        doc="accept 127/8 and ::1 next hops: auto (from a peer on this host), accept, reject",
        session=True,
    )
    extended_next_hop: bool = key(
        checks.boolean, False, doc="offer IPv4 routes over IPv6 next hops (RFC 8950)", session=True
    )
    password: str | None = key(
        checks.optional(checks.string(80)),
        None,
        doc="TCP MD5 signature key (RFC 2385)",
        session=True,
        repr=False,
    )
    ttl_security: int | None = key(
        checks.optional(checks.integer(1, 254)), None, doc="GTSM hops (RFC 5082)", session=True
    )
    multihop: int | None = key(
        checks.optional(checks.integer(1, 255)), None, doc="eBGP multihop TTL", session=True
    )
    families: tuple[str, ...] = key(
        checks.family_list, FAMILIES, doc="address families to negotiate", session=True
    )
    description: str | None = key(checks.optional(checks.string()), None, doc="free text")
    shutdown: bool = key(checks.boolean, False, doc="administratively down")
    add_path: AddPath = key(
        _add_path, AddPath(), doc="ADD-PATH (RFC 7911)", session=True, uses=("families",)
    )
    route_refresh: bool = key(
        checks.boolean, True, doc="offer route refresh (RFC 2918, 7313)", session=True
    )
    extended_message: bool = key(
        checks.boolean, True, doc="offer extended messages (RFC 8654)", session=True
    )
    four_octet_as: bool = key(
        checks.boolean, True, doc="offer four-octet AS numbers (RFC 6793)", session=True
    )
    local_as: int | None = key(
        checks.optional(checks.asn), None, doc="local AS for this neighbor", session=True
    )
    next_hop_self: bool | None = key(
        checks.optional(checks.boolean), None, doc="null: automatic (eBGP yes, iBGP no)"
    )
    next_hop_ipv4: str | None = key(
        checks.optional(_address_of(4)),
        None,
        doc="our next hop for IPv4 routes on this session (null: the session's address, or "
        "with an IPv6 session one of its interface's, or the IPv6 address with RFC 8950)",
    )
    next_hop_ipv6: str | None = key(
        checks.optional(_address_of(6)),
        None,
        doc="our next hop for IPv6 routes on this session (null: the session's address, or "
        "with an IPv4 session the global IPv6 address of its interface)",
    )
    rr_client: bool = key(checks.boolean, False, doc="a route-reflection client (RFC 4456)")
    template: str | None = key(
        checks.optional(checks.string()), None, doc="the template this neighbor's keys come from"
    )
    import_policy: tuple[str, ...] = key(
        _policy_names, (), doc="import policies, applied in order", name="import"
    )
    export_policy: tuple[str, ...] = key(
        _policy_names, (), doc="export policies, applied in order", name="export"
    )
    allow_own_as: int = key(
        checks.integer(0, 10), 0, doc="accept routes with our AS this many times in the path"
    )
    max_prefixes: MaxPrefixes | None = key(
        _max_prefixes, None, doc="limit on prefixes received {limit, action, restart_after}"
    )
    bfd: Any = key(
        _bfd,
        None,
        doc="BFD for this session (docs/bfd.md): true, or {min_tx, min_rx, multiplier, "
        "strict, multihop, auth, ...}",
    )
    graceful_restart_time: int | None = key(
        checks.optional(checks.integer(1, 4095)),
        None,
        doc="the restart time advertised to this neighbor (null: graceful_restart.restart_time)",
        session=True,
    )

    def restart_time(self, gr: "GracefulRestart") -> int:
        """The restart time advertised to this neighbor: its own, else the router's."""
        t = self.graceful_restart_time
        return t if t is not None else gr.restart_time

    def ibgp(self, local_asn: int) -> bool:
        """Whether the session is internal, given the router's AS (``local_as`` wins)."""
        return self.asn == (self.local_as if self.local_as is not None else local_asn)

    @property
    def family(self) -> str:
        """The family of the neighbor's address (``"ipv4"`` or ``"ipv6"``)."""
        return checks.address_family(self.address)

    @property
    def keepalive_time(self) -> int:
        """The keepalive interval to use: the configured one, or a third of the hold time."""
        return self.keepalive if self.keepalive is not None else self.hold_time // 3


@dataclass(frozen=True)
class Template:
    """A parsed ``templates`` entry: the neighbor settings it gives and its AS mode."""

    name: str
    neighbor: "Neighbor"  # parsed with a placeholder address (and AS, for the modes)
    asn: "int | str | None"  # a number, "any", "internal", "external", or None (not given)
    keys: frozenset  # the keys the template sets


@dataclass(frozen=True, kw_only=True)
class _TopTimers:
    """The top-level defaults a template inherits, parsed on their own (for templates)."""

    hold_time: int = key(_hold_time, DEFAULT_HOLD_TIME, doc="")
    keepalive: int | None = key(checks.optional(checks.integer(1, 65535)), None, doc="")
    connect_retry: int = key(checks.integer(1, 65535), DEFAULT_CONNECT_RETRY, doc="")


ASN_MODES = ("any", "internal", "external")


def _template_asn(value: Any) -> "int | str":
    if value in ASN_MODES:
        return value
    return checks.asn(value)


@dataclass(frozen=True, kw_only=True)
class DynamicNeighbors:
    """A range of addresses whose connections create neighbors from a template."""

    range: str = key(checks.network, doc="accept connections from this prefix")
    template: str = key(checks.string(), doc="the template the neighbors are made from")
    limit: int = key(checks.integer(1, 100000), 100, doc="at most this many neighbors at once")


@dataclass(frozen=True, kw_only=True)
class GracefulRestart:
    """``graceful_restart`` (RFC 4724, RFC 8538): keep forwarding across a restart."""

    enabled: bool = key(checks.boolean, True, doc="advertise and honour graceful restart")
    restart_time: int = key(
        checks.integer(1, 4095), 120, doc="seconds peers keep our routes after we go down"
    )
    stale_routes_time: int = key(
        checks.integer(1, 65535), 360, doc="seconds a returned peer has to refresh its routes"
    )
    selection_deferral: int = key(
        checks.integer(1, 65535), 240, doc="after our own restart, wait at most this long for EoR"
    )
    notification: bool = key(
        checks.boolean, True, doc="RFC 8538: NOTIFICATIONs (but Hard Reset) are graceful too"
    )
    restart_marker: str | None = key(
        checks.optional(checks.string()),
        None,
        doc="file a graceful stop leaves for the next start (null: beside control_socket)",
    )


def _graceful_restart(value: Any) -> "GracefulRestart | None":
    if value is None or value is False:
        return None
    if value is True:
        value = {}
    return section(GracefulRestart, value)


@dataclass(frozen=True, kw_only=True)
class Config:
    router_id: str = key(checks.router_id, doc="BGP identifier (IPv4 dotted)")
    asn: int = key(checks.asn, doc="local AS number (asplain or quoted asdot)")
    cluster_id: str | None = key(
        checks.optional(checks.router_id), None, doc="route-reflection cluster ID (null: router_id)"
    )
    listen: tuple[Listen, ...] = key(Sections(Listen), (), doc="addresses to listen on")
    control_socket: str = key(
        _control_socket, DEFAULT_CONTROL_SOCKET, doc="path of the control socket"
    )
    networks: tuple[str, ...] = key(_networks, (), doc="prefixes this router originates")
    hold_time: int = key(_hold_time, DEFAULT_HOLD_TIME, doc="default hold time for neighbors")
    keepalive: int | None = key(
        checks.optional(checks.integer(1, 65535)), None, doc="default keepalive for neighbors"
    )
    connect_retry: int = key(
        checks.integer(1, 65535), DEFAULT_CONNECT_RETRY, doc="default ConnectRetry time"
    )
    neighbors: tuple[Neighbor, ...] = key(Sections(Neighbor), (), doc="BGP neighbors")
    graceful_restart: GracefulRestart | None = key(
        _graceful_restart, None, doc="graceful restart (RFC 4724); absent: off"
    )
    templates: dict = key(
        checks.optional(lambda v: v), {}, doc="named neighbor settings (checked by the loader)"
    )
    dynamic_neighbors: tuple[DynamicNeighbors, ...] = key(
        Sections(DynamicNeighbors), (), doc="ranges whose connections create neighbors"
    )
    policies: dict = key(_policies, {}, doc="named policies (docs/policy.md)")
    multipath: int = key(checks.integer(1, 64), 1, doc="paths per prefix used for ECMP")
    multipath_relax: bool = key(
        checks.boolean, False, doc="ECMP across different AS paths of equal length"
    )
    always_compare_med: bool = key(
        checks.boolean, False, doc="compare MED between routes from different ASes"
    )
    metrics: Metrics | None = key(
        _metrics, None, doc="HTTP listener for Prometheus metrics and health {address, port}"
    )

    kernel: Kernel | None = key(
        checks.optional(mapping_of(Kernel)), None, doc="install routes into the kernel"
    )
    host_routes: HostRoutes | None = key(
        checks.optional(mapping_of(HostRoutes, _check_host_routes)),
        None,
        doc="kernel, connected and static routes into the RIB",
    )
    services: tuple[Service, ...] = key(
        services, (), doc="prefixes announced while a health check passes"
    )
    mrt: Any = key(_mrt, None, doc="MRT update log {updates, rotate, ...} (docs/monitoring.md)")
    bmp: tuple = key(_bmp, (), doc="BMP monitoring stations [{address, port, ...}]")

    def neighbor(self, address: str) -> Neighbor | None:
        """The neighbor with this address (any textual form of it), or None."""
        try:
            address = str(ipaddress.ip_address(address))
        except ValueError:
            return None
        for n in self.neighbors:
            if n.address == address:
                return n
        return None


# --- checks across keys: (section, keys present in its mapping) -> None, raise Invalid ------


def _check_timers(hold: int, keepalive: int | None, given, inherited: str) -> None:
    """keepalive < hold_time, and no keepalive when the hold time is 0."""
    if keepalive is None:
        return
    where = "keepalive" if "keepalive" in given else "hold_time"
    note = ""
    if inherited and not ("keepalive" in given and "hold_time" in given):
        other = "hold_time" if where == "keepalive" else "keepalive"
        note = f" (the {other} is inherited from the {inherited})"
    if hold == 0:
        raise Invalid(
            f"hold_time 0 disables keepalives, but keepalive is {keepalive}{note}; "
            "set keepalive: null",
            where,
        )
    if keepalive >= hold:
        raise Invalid(f"keepalive {keepalive} must be less than hold_time {hold}{note}", where)


def _check_neighbor(n: Neighbor, given: frozenset) -> None:
    if "hold_time" in given or "keepalive" in given:  # else the top-level check speaks
        _check_timers(n.hold_time, n.keepalive, given, "top level")
    if n.ttl_security is not None and n.multihop is not None:
        raise Invalid("ttl_security and multihop are mutually exclusive", "multihop")
    if n.source_address is not None:
        if checks.address_family(n.source_address) != n.family:
            raise Invalid(
                f"{n.source_address} is not of the same family as the neighbor {n.address}",
                "source_address",
            )
        if n.source_address == n.address:
            raise Invalid("the source address is the neighbor's own address", "source_address")


def _check_config(c: Config, given: frozenset) -> None:
    _check_timers(c.hold_time, c.keepalive, given, "")
    listen_at: dict[str, int] = {}
    for i, lst in enumerate(c.listen):
        for j in range(i):
            if c.listen[j] == lst:
                raise Invalid(f"{lst.address} port {lst.port} is listed twice", f"listen[{i}]")
        listen_at.setdefault(lst.address, i)
    kernel = getattr(c, "kernel", None)
    if kernel is not None:
        for j, pname in enumerate(kernel.import_policy):
            if pname not in c.policies:
                known = ", ".join(sorted(c.policies)) or "none defined"
                raise Invalid(
                    f"no policy named {pname!r} under policies ({known})",
                    "kernel.import" + (f"[{j}]" if len(kernel.import_policy) > 1 else ""),
                )
    first: dict[str, int] = {}
    for i, n in enumerate(c.neighbors):
        if n.address in first:
            raise Invalid(
                f"duplicate neighbor {n.address} (also neighbors[{first[n.address]}])",
                f"neighbors[{i}].address",
            )
        first[n.address] = i
        if n.address in listen_at:
            raise Invalid(
                f"{n.address} is this router's own listen address (listen[{listen_at[n.address]}])",
                f"neighbors[{i}].address",
            )
        for what, names in (("import", n.import_policy), ("export", n.export_policy)):
            for j, pname in enumerate(names):
                if pname not in c.policies:
                    known = ", ".join(sorted(c.policies)) or "none defined"
                    raise Invalid(
                        f"no policy named {pname!r} under policies ({known})",
                        f"neighbors[{i}].{what}" + (f"[{j}]" if len(names) > 1 else ""),
                    )
        if n.graceful_restart_time is not None and (
            c.graceful_restart is None or not c.graceful_restart.enabled
        ):
            raise Invalid(
                "a restart time for this neighbor needs graceful_restart on at the top level",
                f"neighbors[{i}].graceful_restart_time",
            )
        if n.rr_client and not n.ibgp(c.asn):
            raise Invalid(
                "only an iBGP neighbor can be a route-reflection client",
                f"neighbors[{i}].rr_client",
            )
        if not n.four_octet_as:
            local = n.local_as if n.local_as is not None else c.asn
            for what, number in (("the neighbor's AS", n.asn), ("the local AS", local)):
                if number > 0xFFFF:
                    raise Invalid(
                        f"{what} {number} needs four-octet AS support (RFC 6793)",
                        f"neighbors[{i}].four_octet_as",
                    )


VALIDATORS = {Neighbor: _check_neighbor, Config: _check_config}

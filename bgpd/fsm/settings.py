"""Per-peer session settings: everything the FSM needs from the configuration."""

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..wire import AFS
from ..wire.capabilities import FQDN, GracefulRestart, LongLivedGR

ADD_PATH_MODES = {"receive": 1, "send": 2, "both": 3}
LOOPBACK_NEXT_HOP = ("auto", "accept", "reject")


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """The configuration of one BGP session (times in seconds).

    ``peer_as`` None (or ``allow_any_as``) accepts any AS in the peer's OPEN, as dynamic peers
    need. ``idle_hold`` is (initial, maximum) of the wait before an automatic restart after an
    error; it doubles per consecutive error and falls back to the initial value once no error
    happened for ``error_forget`` seconds (BIRD's error wait and forget times).
    ``wait_after_peer_stop`` False: when the peer ends the session without an error (a Cease
    from it, or its connection closed), start again at once, as BIRD does (a restarted
    neighbor's sessions come straight back), the back-off starting over; True waits the
    idle hold.
    ``connect_delay`` > 0 delays our first connection attempt of every start by that long (in
    Active, where the peer's connection is accepted meanwhile), as BIRD's connect delay time.
    ``loopback_next_hop``: "accept", "reject", or "auto" (accepted only on a connection
    between two loopback addresses: the peer is this host; :mod:`bgpd.wire.nexthop`).
    ``delay_open`` 0 disables the DelayOpenTimer. ``keepalive`` None means a third of the
    negotiated hold time. ``add_path`` maps a family to "send", "receive" or "both".
    ``extended_next_hop`` lists the families for which we accept an IPv6 next hop (RFC 8950).
    ``required_capabilities`` are capability codes the peer must advertise (else 2/7).
    ``fqdn`` is a hostname ("host.example.net" is split at the first dot) or an FQDN capability.
    ``pool`` is the attribute-set pool given to the decoding context (None: the default pool).
    """

    local_as: int
    peer_as: int | None
    router_id: str
    hold_time: int = 90
    keepalive: float | None = None
    connect_retry: float = 30.0
    passive: bool = False
    delay_open: float = 0.0
    idle_hold: tuple[float, float] = (5.0, 120.0)
    connect_delay: float = 0.0
    families: tuple[tuple[int, int], ...] = ((1, 1), (2, 1))
    route_refresh: bool = True
    enhanced_route_refresh: bool = True
    extended_message: bool = True
    four_octet_as: bool = True
    add_path: Mapping[tuple[int, int], str] = field(default_factory=dict)
    graceful_restart: GracefulRestart | None = None
    long_lived_gr: LongLivedGR | None = None
    fqdn: str | FQDN | None = None
    extended_next_hop: tuple[tuple[int, int], ...] = ()
    required_capabilities: tuple[int, ...] = ()
    allow_any_as: bool = False
    error_forget: float = 300.0
    wait_after_peer_stop: bool = True
    loopback_next_hop: str = "auto"
    pool: object | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Accept lists from a config loader; store hashable tuples.
        fix = object.__setattr__
        fix(self, "families", tuple(tuple(f) for f in self.families))
        fix(self, "extended_next_hop", tuple(tuple(f) for f in self.extended_next_hop))
        fix(self, "add_path", {tuple(f): mode for f, mode in dict(self.add_path).items()})
        fix(self, "required_capabilities", tuple(self.required_capabilities))
        fix(self, "idle_hold", tuple(self.idle_hold))
        if not 0 < self.local_as < 2**32:
            raise ValueError(f"local AS {self.local_as} out of range")
        if self.local_as > 0xFFFF and not self.four_octet_as:
            raise ValueError(f"local AS {self.local_as} needs the four-octet AS capability")
        if self.peer_as is not None and not 0 < self.peer_as < 2**32:
            raise ValueError(f"peer AS {self.peer_as} out of range")
        try:
            rid = ipaddress.IPv4Address(self.router_id)
        except ValueError:
            raise ValueError(f"router id {self.router_id!r} is not an IPv4 address")
        if int(rid) == 0:
            raise ValueError("router id 0.0.0.0 is not allowed")
        if not (self.hold_time == 0 or 3 <= self.hold_time <= 0xFFFF):
            raise ValueError(f"hold time {self.hold_time}: must be 0 or 3..65535")
        if self.keepalive is not None and self.keepalive <= 0:
            raise ValueError(f"keepalive {self.keepalive}: must be positive")
        if self.connect_retry <= 0:
            raise ValueError(f"connect retry {self.connect_retry}: must be positive")
        if self.delay_open < 0:
            raise ValueError(f"delay open {self.delay_open}: must not be negative")
        initial, maximum = self.idle_hold
        if initial < 0 or maximum < initial:
            raise ValueError(f"idle hold {self.idle_hold}: need 0 <= initial <= maximum")
        if self.connect_delay < 0:
            raise ValueError(f"connect delay {self.connect_delay}: must not be negative")
        if self.error_forget < 0:
            raise ValueError(f"error forget {self.error_forget}: must not be negative")
        if self.loopback_next_hop not in LOOPBACK_NEXT_HOP:
            raise ValueError(
                f"loopback next hop {self.loopback_next_hop!r}: one of {LOOPBACK_NEXT_HOP}"
            )
        for fam in self.families:
            if fam not in AFS:
                raise ValueError(f"address family {fam} is not supported")
        for fam, mode in self.add_path.items():
            if fam not in self.families:
                raise ValueError(f"add-path for family {fam} that is not configured")
            if mode not in ADD_PATH_MODES:
                raise ValueError(f"add-path mode {mode!r}: one of {sorted(ADD_PATH_MODES)}")
        for fam in self.extended_next_hop:
            if fam not in self.families:
                raise ValueError(f"extended next hop for family {fam} that is not configured")
        for code in self.required_capabilities:
            if not 0 < code < 256:
                raise ValueError(f"capability code {code} out of range")

    @property
    def ibgp(self) -> bool | None:
        """True for an internal peer, None while the peer's AS is not known (dynamic peers)."""
        if self.peer_as is None:
            return None
        return self.peer_as == self.local_as

    @property
    def accepts_any_as(self) -> bool:
        return self.peer_as is None or self.allow_any_as

    def accepts_loopback_next_hop(self, loopback_connection: bool) -> bool:
        """Whether a peer's loopback next hops are usable on this connection."""
        if self.loopback_next_hop == "auto":
            return loopback_connection
        return self.loopback_next_hop == "accept"

    def fqdn_capability(self) -> FQDN | None:
        if self.fqdn is None or isinstance(self.fqdn, FQDN):
            return self.fqdn
        host, _, domain = self.fqdn.partition(".")
        return FQDN(host, domain)


def session_keys(cfg) -> dict:
    """The :class:`SessionSettings` keyword arguments of a neighbor's (or template's) keys
    that only the FSM uses: ``connect_delay``, ``error_wait``, ``error_forget``,
    ``loopback_next_hop`` and ``extended_next_hop`` of ``bgpd.config.schema.Neighbor`` (read
    by name: the FSM does not import the config layer). The daemon adds them to the settings
    it builds for the neighbor."""
    out: dict = {
        "connect_delay": float(cfg.connect_delay),
        "idle_hold": tuple(float(x) for x in cfg.error_wait),
        "error_forget": float(cfg.error_forget),
        "loopback_next_hop": cfg.loopback_next_hop,
    }
    if cfg.extended_next_hop and "ipv4" in cfg.families:
        out["extended_next_hop"] = ((1, 1),)  # IPv4 unicast over an IPv6 next hop (RFC 8950)
    return out


__all__ = ["ADD_PATH_MODES", "LOOPBACK_NEXT_HOP", "SessionSettings", "session_keys"]

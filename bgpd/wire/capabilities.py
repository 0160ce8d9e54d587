"""OPEN capabilities (RFC 5492): one row per capability code, unknown ones kept as raw bytes."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from .constants import (
    CAP_ADD_PATH,
    CAP_ENHANCED_ROUTE_REFRESH,
    CAP_EXTENDED_MESSAGE,
    CAP_EXTENDED_NEXT_HOP,
    CAP_FOUR_OCTET_AS,
    CAP_FQDN,
    CAP_GRACEFUL_RESTART,
    CAP_LONG_LIVED_GR,
    CAP_MULTIPROTOCOL,
    CAP_ROUTE_REFRESH,
    CAP_ROUTE_REFRESH_CISCO,
)


class CapabilityError(ValueError):
    """A capability whose value cannot be parsed (becomes OPEN error 2/0 upstream)."""


@dataclass(frozen=True, slots=True)
class Multiprotocol:
    afi: int
    safi: int
    code = CAP_MULTIPROTOCOL


@dataclass(frozen=True, slots=True)
class RouteRefresh:
    code = CAP_ROUTE_REFRESH


@dataclass(frozen=True, slots=True)
class EnhancedRouteRefresh:
    code = CAP_ENHANCED_ROUTE_REFRESH


@dataclass(frozen=True, slots=True)
class ExtendedMessage:
    code = CAP_EXTENDED_MESSAGE


@dataclass(frozen=True, slots=True)
class FourOctetAS:
    asn: int
    code = CAP_FOUR_OCTET_AS


@dataclass(frozen=True, slots=True)
class ExtendedNextHop:
    """RFC 8950: entries of (nlri afi, nlri safi, next-hop afi)."""

    entries: tuple[tuple[int, int, int], ...]
    code = CAP_EXTENDED_NEXT_HOP


@dataclass(frozen=True, slots=True)
class GracefulRestart:
    """RFC 4724 (+ RFC 8538 N bit): families are (afi, safi, forwarding_preserved)."""

    restart_time: int
    restarting: bool = False  # R bit
    notification: bool = False  # N bit (RFC 8538)
    families: tuple[tuple[int, int, bool], ...] = ()
    code = CAP_GRACEFUL_RESTART


@dataclass(frozen=True, slots=True)
class AddPath:
    """RFC 7911: entries of (afi, safi, send_receive) with 1=receive, 2=send, 3=both."""

    entries: tuple[tuple[int, int, int], ...]
    code = CAP_ADD_PATH


@dataclass(frozen=True, slots=True)
class LongLivedGR:
    """RFC 9494: entries of (afi, safi, flags, stale_time)."""

    entries: tuple[tuple[int, int, int, int], ...]
    code = CAP_LONG_LIVED_GR


@dataclass(frozen=True, slots=True)
class FQDN:
    hostname: str
    domain: str = ""
    code = CAP_FQDN


@dataclass(frozen=True, slots=True)
class UnknownCapability:
    code: int
    value: bytes = b""


Capability = (
    Multiprotocol
    | RouteRefresh
    | EnhancedRouteRefresh
    | ExtendedMessage
    | FourOctetAS
    | ExtendedNextHop
    | GracefulRestart
    | AddPath
    | LongLivedGR
    | FQDN
    | UnknownCapability
)


def _u16(v: bytes, i: int) -> int:
    return (v[i] << 8) | v[i + 1]


def _need(v: bytes, cond: bool, what: str) -> None:
    if not cond:
        raise CapabilityError(f"{what}: bad length {len(v)}")


def _d_mp(v):
    _need(v, len(v) == 4, "multiprotocol")
    return Multiprotocol(_u16(v, 0), v[3])


def _e_mp(c):
    return c.afi.to_bytes(2, "big") + b"\x00" + bytes((c.safi,))


def _d_empty(cls, name):
    def dec(v):
        _need(v, len(v) == 0, name)
        return cls()

    return dec


def _d_as4(v):
    _need(v, len(v) == 4, "four-octet AS")
    return FourOctetAS(int.from_bytes(v, "big"))


def _d_enh(v):
    _need(v, len(v) % 6 == 0, "extended next hop")
    return ExtendedNextHop(
        tuple((_u16(v, i), _u16(v, i + 2), _u16(v, i + 4)) for i in range(0, len(v), 6))
    )


def _e_enh(c):
    return b"".join(
        a.to_bytes(2, "big") + s.to_bytes(2, "big") + n.to_bytes(2, "big") for a, s, n in c.entries
    )


def _d_gr(v):
    _need(v, len(v) >= 2 and (len(v) - 2) % 4 == 0, "graceful restart")
    flags_time = _u16(v, 0)
    fams = tuple((_u16(v, i), v[i + 2], bool(v[i + 3] & 0x80)) for i in range(2, len(v), 4))
    return GracefulRestart(
        restart_time=flags_time & 0x0FFF,
        restarting=bool(flags_time & 0x8000),
        notification=bool(flags_time & 0x4000),
        families=fams,
    )


def _e_gr(c):
    ft = (
        (c.restart_time & 0x0FFF)
        | (0x8000 if c.restarting else 0)
        | (0x4000 if c.notification else 0)
    )
    return ft.to_bytes(2, "big") + b"".join(
        a.to_bytes(2, "big") + bytes((s, 0x80 if f else 0)) for a, s, f in c.families
    )


def _d_addpath(v):
    _need(v, len(v) % 4 == 0, "add-path")
    entries = tuple((_u16(v, i), v[i + 2], v[i + 3]) for i in range(0, len(v), 4))
    for _afi, _safi, sr in entries:
        if sr not in (1, 2, 3):
            # RFC 7911 §4: "If any other value is received, then the capability SHOULD be
            # treated as not understood and ignored" (FRR sends 0 for a family it disabled).
            return UnknownCapability(CAP_ADD_PATH, bytes(v))
    return AddPath(entries)


def _e_addpath(c):
    return b"".join(a.to_bytes(2, "big") + bytes((s, sr)) for a, s, sr in c.entries)


def _d_llgr(v):
    _need(v, len(v) % 7 == 0, "long-lived graceful restart")
    return LongLivedGR(
        tuple(
            (_u16(v, i), v[i + 2], v[i + 3], int.from_bytes(v[i + 4 : i + 7], "big"))
            for i in range(0, len(v), 7)
        )
    )


def _e_llgr(c):
    return b"".join(
        a.to_bytes(2, "big") + bytes((s, f)) + t.to_bytes(3, "big") for a, s, f, t in c.entries
    )


def _d_fqdn(v):
    _need(v, len(v) >= 1, "fqdn")
    hl = v[0]
    _need(v, len(v) >= 1 + hl + 1 and len(v) == 2 + hl + v[1 + hl], "fqdn")
    host = v[1 : 1 + hl].decode("utf-8", "replace")
    dl = v[1 + hl]
    dom = v[2 + hl : 2 + hl + dl].decode("utf-8", "replace")
    return FQDN(host, dom)


def _e_fqdn(c):
    h = c.hostname.encode()[:255]
    d = c.domain.encode()[:255]
    return bytes((len(h),)) + h + bytes((len(d),)) + d


class CapSpec(NamedTuple):
    name: str
    decode: Callable[[bytes], object]
    encode: Callable[[object], bytes]


CAPABILITIES: dict[int, CapSpec] = {
    CAP_MULTIPROTOCOL: CapSpec("multiprotocol", _d_mp, _e_mp),
    CAP_ROUTE_REFRESH: CapSpec(
        "route-refresh", _d_empty(RouteRefresh, "route refresh"), lambda c: b""
    ),
    CAP_EXTENDED_NEXT_HOP: CapSpec("extended-next-hop", _d_enh, _e_enh),
    CAP_EXTENDED_MESSAGE: CapSpec(
        "extended-message", _d_empty(ExtendedMessage, "extended message"), lambda c: b""
    ),
    CAP_GRACEFUL_RESTART: CapSpec("graceful-restart", _d_gr, _e_gr),
    CAP_FOUR_OCTET_AS: CapSpec("four-octet-as", _d_as4, lambda c: c.asn.to_bytes(4, "big")),
    CAP_ADD_PATH: CapSpec("add-path", _d_addpath, _e_addpath),
    CAP_ENHANCED_ROUTE_REFRESH: CapSpec(
        "enhanced-route-refresh",
        _d_empty(EnhancedRouteRefresh, "enhanced route refresh"),
        lambda c: b"",
    ),
    CAP_LONG_LIVED_GR: CapSpec("long-lived-graceful-restart", _d_llgr, _e_llgr),
    CAP_FQDN: CapSpec("fqdn", _d_fqdn, _e_fqdn),
}

CAPABILITY_NAMES = {code: spec.name for code, spec in CAPABILITIES.items()}
CAPABILITY_NAMES[CAP_ROUTE_REFRESH_CISCO] = "route-refresh-cisco"


def capability_name(code: int) -> str:
    return CAPABILITY_NAMES.get(code, f"unknown-{code}")


def decode_capability(code: int, value: bytes):
    spec = CAPABILITIES.get(code)
    if spec is None:
        return UnknownCapability(code, bytes(value))
    return spec.decode(bytes(value))


def encode_capability(cap) -> bytes:
    """code, length, value; capabilities longer than 255 octets cannot be encoded."""
    if isinstance(cap, UnknownCapability):
        value = cap.value
    else:
        value = CAPABILITIES[cap.code].encode(cap)
    if len(value) > 255:
        raise ValueError(f"capability {cap.code} too long ({len(value)} octets)")
    return bytes((cap.code, len(value))) + value

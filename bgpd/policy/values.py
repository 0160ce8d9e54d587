"""The policy language's values, parsed once at compile time.

Everything here turns config text into plain ints, tuples and compiled regexes, raising
:class:`PolicyError` with the key path on bad input; the matchers and actions built from the
results never parse text or build ``ipaddress`` objects while evaluating a route.
"""

import ipaddress
import re

from bgpd.rib import filters
from bgpd.rib.filters import MAX_LEN, PrefixEntry
from bgpd.wire.constants import (
    AFI_IPV4,
    AFI_IPV6,
    AS_CONFED_SEQUENCE,
    AS_CONFED_SET,
    AS_SET,
    NO_ADVERTISE,
    NO_EXPORT,
    NO_EXPORT_SUBCONFED,
)

from .errors import PolicyError

__all__ = ["MAX_LEN", "PrefixEntry"]  # re-exported: the policy's own names for them
FAMILY_TEXT = {AFI_IPV4: "IPv4", AFI_IPV6: "IPv6"}

# Well-known communities (RFC 1997 and later registrations) by the names the config accepts.
GRACEFUL_SHUTDOWN = 0xFFFF0000  # RFC 8326, 65535:0
ACCEPT_OWN = 0xFFFF0001  # RFC 7611, 65535:1
LLGR_STALE = 0xFFFF0006  # RFC 9494, 65535:6
NO_LLGR = 0xFFFF0007  # RFC 9494, 65535:7
BLACKHOLE = 0xFFFF029A  # RFC 7999, 65535:666
NO_PEER = 0xFFFFFF04  # RFC 3765, 65535:65284
WELL_KNOWN_COMMUNITIES = {
    "no-export": NO_EXPORT,
    "no-advertise": NO_ADVERTISE,
    "no-export-subconfed": NO_EXPORT_SUBCONFED,
    "local-as": NO_EXPORT_SUBCONFED,  # Cisco's name for the same value
    "no-peer": NO_PEER,
    "blackhole": BLACKHOLE,
    "graceful-shutdown": GRACEFUL_SHUTDOWN,
    "accept-own": ACCEPT_OWN,
    "llgr-stale": LLGR_STALE,
    "no-llgr": NO_LLGR,
}

_YAML_HINT = (
    '; quote it in YAML ("65000:1"): unquoted, YAML 1.1 reads A:B with B < 60 as a base-60 number'
)


def describe(value) -> str:
    """A short description of a config value of the wrong type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def need_str(value, path: str, what: str = "a string") -> str:
    if not isinstance(value, str):
        raise PolicyError(path, f"expected {what}, got {describe(value)}")
    text = value.strip()
    if not text:
        raise PolicyError(path, f"expected {what}, got an empty string")
    return text


def need_int(value, path: str, lo: int, hi: int, what: str = "an integer") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(path, f"expected {what}, got {describe(value)}")
    if not lo <= value <= hi:
        raise PolicyError(path, f"{value} is out of range ({lo}..{hi})")
    return value


# --- prefixes and addresses -----------------------------------------------------------------


def parse_network(text: str, path: str, what: str = "prefix"):
    """An ``ipaddress`` network from ``"P/L"`` or a bare address (a host route)."""
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as e:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise PolicyError(path, f"{text!r} is not a valid {what} ({e})")
        raise PolicyError(path, f"{text!r} has host bits set (did you mean {loose}?)")


def network_bits(net) -> tuple[int, int, int]:
    """``(afi, length, top bits as int)`` of an ``ipaddress`` network."""
    afi = AFI_IPV4 if net.version == 4 else AFI_IPV6
    length = net.prefixlen
    return afi, length, int(net.network_address) >> (MAX_LEN[afi] - length)


def parse_prefix_entry(value, path: str) -> PrefixEntry:
    """``"P"`` (exact), ``"P ge N"``, ``"P le M"`` or ``"P ge N le M"`` (bgpd/rib/filters.py)."""
    text = need_str(value, path, "a prefix like '10.0.0.0/8 ge 24 le 32'")
    try:
        return filters.parse_prefix_entry(text)
    except ValueError as e:
        raise PolicyError(path, str(e)) from None


def parse_address(value, path: str, what: str = "an IP address") -> bytes:
    """A unicast address as packed bytes (4 or 16 octets)."""
    text = need_str(value, path, what)
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise PolicyError(path, f"{text!r} is not a valid IP address")
    if addr.is_multicast or addr.is_unspecified:
        raise PolicyError(path, f"{text} is not a unicast address")
    return addr.packed


# --- communities ----------------------------------------------------------------------------


Range = tuple[int, int]  # an inclusive (low, high) range of one community field


def _field(text: str, whole: str, path: str, top: int, wild: bool) -> Range:
    """One field: ``N``, or with ``wild`` also ``*`` (any value) and ``N-M`` (a range)."""
    if wild and text == "*":
        return (0, top)
    lo_text, dash, hi_text = text.partition("-")
    if dash and not wild:
        raise PolicyError(path, f"{whole!r}: ranges are not allowed here")
    if not wild and text == "*":
        raise PolicyError(path, f"{whole!r}: wildcards are not allowed here")
    bounds = []
    for part in (lo_text, hi_text) if dash else (lo_text,):
        part = part.strip()
        if not part.isdigit():
            raise PolicyError(path, f"{whole!r}: {text!r} is not a number")
        n = int(part)
        if n > top:
            raise PolicyError(path, f"{whole!r}: {n} is out of range (0..{top})")
        bounds.append(n)
    lo, hi = bounds[0], bounds[-1]
    if lo > hi:
        raise PolicyError(path, f"{whole!r}: empty range {lo}-{hi}")
    return (lo, hi)


def parse_community(value, path: str, wild: bool = False) -> tuple[Range, Range]:
    """``"A:B"`` or a well-known name as two ranges, ``((A, A), (B, B))``; with ``wild``, a
    field may also be ``*`` (any value) or ``N-M`` (an inclusive range)."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise PolicyError(
            path, f"expected a community like '65000:100', got the number {value}{_YAML_HINT}"
        )
    text = need_str(value, path, "a community like '65000:100'")
    name = text.lower().replace("_", "-")
    if name in WELL_KNOWN_COMMUNITIES:
        c = WELL_KNOWN_COMMUNITIES[name]
        return (c >> 16, c >> 16), (c & 0xFFFF, c & 0xFFFF)
    parts = text.split(":")
    if len(parts) != 2:
        known = ", ".join(WELL_KNOWN_COMMUNITIES)
        raise PolicyError(path, f"{text!r} is not a community (expected 'A:B' or one of: {known})")
    return (
        _field(parts[0].strip(), text, path, 0xFFFF, wild),
        _field(parts[1].strip(), text, path, 0xFFFF, wild),
    )


def parse_large_community(value, path: str, wild: bool = False) -> tuple[Range, Range, Range]:
    """``"A:B:C"`` (three 32-bit numbers) as three ranges; ``*`` and ``N-M`` when ``wild``."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise PolicyError(
            path,
            f"expected a large community like '64512:1:2', got the number {value}{_YAML_HINT}",
        )
    text = need_str(value, path, "a large community like '64512:1:2'")
    parts = text.split(":")
    if len(parts) != 3:
        raise PolicyError(path, f"{text!r} is not a large community (expected 'A:B:C')")
    return tuple(_field(p.strip(), text, path, 0xFFFFFFFF, wild) for p in parts)


# --- AS paths -------------------------------------------------------------------------------

# FRR's "_": the start or end of the path, or any delimiter between (and around) AS numbers.
UNDERSCORE = r"(?:^|$|[ ,{}()\[\]])"


def translate_as_path_regex(text: str) -> str:
    """An AS-path regex in FRR's syntax as a Python regex: every unescaped ``_`` becomes
    :data:`UNDERSCORE`; the rest is Python ``re`` syntax."""
    out = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            out.append(text[i : i + 2])
            i += 2
            continue
        out.append(UNDERSCORE if ch == "_" else ch)
        i += 1
    return "".join(out)


def compile_as_path_regex(value, path: str) -> re.Pattern:
    if not isinstance(value, str):
        raise PolicyError(path, f"expected an AS-path regex, got {describe(value)}")
    try:
        return re.compile(translate_as_path_regex(value))
    except re.error as e:
        raise PolicyError(path, f"bad regex {value!r}: {e}")


def as_path_text(as_path) -> str:
    """The AS path as the string regexes run over (FRR's rendering).

    AS_SEQUENCE members are separated by spaces: ``"65001 65002"``; an AS_SET is
    ``"{65003,65004}"``, an AS_CONFED_SEQUENCE ``"(65010 65011)"``, an AS_CONFED_SET
    ``"[65010,65011]"``; segments are separated by spaces. An empty or absent path is ``""``.
    """
    parts = []
    for seg_type, asns in as_path or ():
        if seg_type == AS_SET:
            parts.append("{" + ",".join(map(str, asns)) + "}")
        elif seg_type == AS_CONFED_SEQUENCE:
            parts.append("(" + " ".join(map(str, asns)) + ")")
        elif seg_type == AS_CONFED_SET:
            parts.append("[" + ",".join(map(str, asns)) + "]")
        else:
            parts.append(" ".join(map(str, asns)))
    return " ".join(parts)


# --- interface globs ------------------------------------------------------------------------


def parse_interface_glob(value, path: str) -> tuple[bool, re.Pattern]:
    """``"cali*"`` (include) or ``"-kube*"`` (exclude): ``(include, compiled glob)``."""
    text = need_str(value, path, "an interface name or glob")
    try:
        return filters.parse_interface_glob(text)
    except ValueError as e:
        raise PolicyError(path, str(e)) from None

"""Value checkers: each takes the value YAML produced and returns the normalised value.

A checker raises :class:`Invalid` with a reason that says what was expected and what was
found; the parser adds the file and the key path. Checkers are strict: a boolean must be a
YAML boolean, a number a YAML integer, and a value that YAML turned into another type than
the user meant (``asn: 1.10`` is the float 1.1) gets a hint to quote it.
"""

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from .errors import Invalid

Checker = Callable[[Any], Any]

ASN_MAX = 4294967295
AS_TRANS = 23456  # RFC 6793: a placeholder, never a real AS
FAMILIES = ("ipv4", "ipv6")  # canonical order


def describe(value: Any) -> str:
    """How a YAML value reads in an error message: its type and, when short, the value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value!r}" if len(value) <= 60 else "a long string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    hint = ""
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
        hint = " (write it without quotes)"
    raise Invalid(f"expected true or false, got {describe(value)}{hint}")


def integer(lo: int, hi: int, zero_ok: bool = False) -> Checker:
    """An integer in ``lo..hi`` (or 0 when ``zero_ok``)."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            hint = ""
            if isinstance(value, str) and value.strip().isdigit():
                hint = " (write it without quotes)"
            raise Invalid(f"expected an integer, got {describe(value)}{hint}")
        if not (lo <= value <= hi or (zero_ok and value == 0)):
            allowed = f"0 or {lo}..{hi}" if zero_ok else f"{lo}..{hi}"
            raise Invalid(f"{value} is out of range ({allowed})")
        return value

    return check


def string(max_bytes: int | None = None) -> Checker:
    """A non-empty string (at most ``max_bytes`` octets of UTF-8)."""

    def check(value: Any) -> str:
        if not isinstance(value, str):
            hint = " (quote it)" if isinstance(value, (int, float)) else ""
            raise Invalid(f"expected a string, got {describe(value)}{hint}")
        if not value:
            raise Invalid("must not be empty (leave the key out, or use null)")
        if max_bytes is not None and len(value.encode("utf-8")) > max_bytes:
            raise Invalid(f"longer than {max_bytes} octets")
        return value

    return check


def optional(check: Checker) -> Checker:
    """``check``, or null."""

    def opt(value: Any) -> Any:
        return None if value is None else check(value)

    return opt


def _text_address(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    hint = ""
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads some all-digit IPv6 addresses (1:2:3::) as base-60 integers.
        hint = " (quote it: YAML read it as a number)"
    raise Invalid(f"expected {what}, got {describe(value)}{hint}")


def ipv4_address(value: Any) -> str:
    text = _text_address(value, "an IPv4 address")
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise Invalid(f"{text!r} is not an IPv4 address")


def router_id(value: Any) -> str:
    """A BGP identifier (router ID, cluster ID): a non-zero IPv4 address."""
    rid = ipv4_address(value)
    if rid == "0.0.0.0":
        raise Invalid("must not be 0.0.0.0")
    return rid


def ip_address(value: Any) -> str:
    """An IPv4 or IPv6 address in canonical text form (IPv6 may carry a ``%zone``)."""
    text = _text_address(value, "an IP address")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise Invalid(f"{text!r} is not an IPv4 or IPv6 address")


def address_family(address: str) -> str:
    """``"ipv4"`` or ``"ipv6"`` for a checked address."""
    return "ipv6" if ":" in address else "ipv4"


def peer_address(value: Any) -> str:
    """A unicast address a BGP neighbor can have."""
    address = ip_address(value)
    ip = ipaddress.ip_address(address)
    if ip.is_unspecified or ip.is_multicast:
        raise Invalid(f"{address} is not a unicast host address")
    if ip.version == 4 and address == "255.255.255.255":
        raise Invalid(f"{address} is not a unicast host address")
    if ip.version == 6 and ip.is_link_local and ip.scope_id is None:
        raise Invalid(f"a link-local neighbor needs its interface: write {address}%IFNAME")
    return address


_ASDOT = re.compile(r"^(\d+)\.(\d+)$")


def asn(value: Any) -> int:
    """An AS number: an integer (asplain) or a quoted ``"high.low"`` (asdot, RFC 5396)."""
    if isinstance(value, float):
        raise Invalid(
            f"{describe(value)} is not an AS number "
            '(asdot must be quoted: write "1.10", YAML reads 1.10 as the number 1.1)'
        )
    if isinstance(value, str):
        text = value.strip()
        m = _ASDOT.match(text)
        if m:
            high, low = int(m.group(1)), int(m.group(2))
            if high > 0xFFFF or low > 0xFFFF:
                raise Invalid(f"{text!r}: both halves of an asdot AS number must be 0..65535")
            number = (high << 16) | low
        elif text.isdigit():
            number = int(text)
        else:
            raise Invalid(f'{text!r} is not an AS number (use 65001 or asdot "1.10")')
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise Invalid(f"expected an AS number, got {describe(value)}")
    if not 1 <= number <= ASN_MAX:
        raise Invalid(f"AS number {number} is out of range (1..{ASN_MAX})")
    if number == AS_TRANS:
        raise Invalid(f"AS {AS_TRANS} is AS_TRANS (RFC 6793), not a usable AS number")
    return number


def network(value: Any) -> str:
    """A prefix with its host bits clear, in canonical text form."""
    if not isinstance(value, str):
        raise Invalid(f"expected a prefix like 10.0.0.0/24, got {describe(value)}")
    if "/" not in value:
        raise Invalid(f"{value!r} has no prefix length (write {value}/32 or {value}/128)")
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as e:
        if "host bits set" in str(e):
            loose = ipaddress.ip_network(value, strict=False)
            raise Invalid(f"{value!r} has host bits set (did you mean {loose}?)")
        raise Invalid(f"{value!r} is not a prefix")


def family_list(value: Any) -> tuple[str, ...]:
    """A non-empty list of address families, returned in canonical order."""
    if not isinstance(value, list):
        raise Invalid(f"expected a list of families such as [ipv4, ipv6], got {describe(value)}")
    if not value:
        raise Invalid("must name at least one family (ipv4, ipv6)")
    seen = set()
    for i, item in enumerate(value):
        if item not in FAMILIES:
            raise Invalid(f"unknown family {describe(item)} (known: ipv4, ipv6)", f"[{i}]")
        if item in seen:
            raise Invalid(f"{item} is listed twice", f"[{i}]")
        seen.add(item)
    return tuple(f for f in FAMILIES if f in seen)

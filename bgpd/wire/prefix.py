"""Prefixes as their wire encoding: a length octet followed by the significant octets.

``b"\\x18\\x0a\\x00\\x01"`` is 10.0.1.0/24. The UPDATE path never builds ``ipaddress``
objects; the conversions here are for the edges (config, CLI, kernel, JSON).
"""

import ipaddress

from .constants import AFI_IPV4, AFI_IPV6, ERR_UPDATE, UPD_INVALID_NETWORK
from .errors import Action, BGPError

# Per prefix length: 1 + number of significant octets, or 0 when the length is invalid.
_STEP4 = bytes((1 + ((n + 7) >> 3)) if n <= 32 else 0 for n in range(256))
_STEP6 = bytes((1 + ((n + 7) >> 3)) if n <= 128 else 0 for n in range(256))
STEP = {AFI_IPV4: _STEP4, AFI_IPV6: _STEP6}
# Mask for the last octet of a prefix of length n (n % 8 != 0).
_LAST_MASK = tuple((0xFF << (8 - (n & 7))) & 0xFF if n & 7 else 0xFF for n in range(256))


def _bad(detail: str, data: bytes = b"") -> BGPError:
    return BGPError(ERR_UPDATE, UPD_INVALID_NETWORK, data, Action.RESET, detail)


def _clean(p: bytes) -> bytes:
    """Clear bits past the prefix length in the last octet (peers may leave junk there)."""
    plen = p[0]
    last = p[-1]
    masked = last & _LAST_MASK[plen]
    if masked == last:
        return p
    return p[:-1] + bytes((masked,))


def parse_prefixes(data: bytes, start: int, end: int, afi: int) -> list[bytes]:
    """Split an NLRI or withdrawn-routes field into prefix keys (RFC 4271 §4.3)."""
    step = STEP[afi]
    if start < end:
        # Fast path: every prefix has the same octet-aligned length (a table of /24s, /48s):
        # check all the length octets at once and slice.
        plen = data[start]
        n = step[plen]
        if n and not plen & 7 and not (end - start) % n:
            k = (end - start) // n
            if data[start:end:n] == bytes((plen,)) * k:
                return [data[i : i + n] for i in range(start, end, n)]
    out: list[bytes] = []
    append = out.append
    i = start
    while i < end:
        plen = data[i]
        n = step[plen]
        if not n:
            raise _bad(f"prefix length {plen} too long", data[i : i + 1])
        j = i + n
        if j > end:
            raise _bad("prefix overruns the field")
        p = data[i:j]
        if plen & 7 and p[-1] & ~_LAST_MASK[plen] & 0xFF:
            p = _clean(p)
        append(p)
        i = j
    return out


def parse_prefixes_addpath(data: bytes, start: int, end: int, afi: int) -> list[tuple[int, bytes]]:
    """Like :func:`parse_prefixes` for ADD-PATH NLRI (RFC 7911 §3): ``(path_id, prefix)``."""
    step = STEP[afi]
    out: list[tuple[int, bytes]] = []
    append = out.append
    i = start
    from_bytes = int.from_bytes
    while i < end:
        if i + 5 > end:
            raise _bad("path identifier overruns the field")
        pid = from_bytes(data[i : i + 4], "big")
        plen = data[i + 4]
        n = step[plen]
        if not n:
            raise _bad(f"prefix length {plen} too long", data[i + 4 : i + 5])
        j = i + 4 + n
        if j > end:
            raise _bad("prefix overruns the field")
        p = data[i + 4 : j]
        if plen & 7 and p[-1] & ~_LAST_MASK[plen] & 0xFF:
            p = _clean(p)
        append((pid, p))
        i = j
    return out


def encode_nlri(items, addpath: bool) -> bytes:
    """Join prefix keys (or ``(path_id, prefix)`` pairs when ``addpath``) into a field."""
    if not addpath:
        return b"".join(items)
    return b"".join(pid.to_bytes(4, "big") + p for pid, p in items)


def prefix_size(item, addpath: bool) -> int:
    return len(item[1]) + 4 if addpath else len(item)


# --- edges: text and ipaddress conversions -------------------------------------------------


def from_network(network: "ipaddress.IPv4Network | ipaddress.IPv6Network") -> bytes:
    plen = network.prefixlen
    return bytes((plen,)) + network.network_address.packed[: (plen + 7) >> 3]


def from_str(text: str) -> bytes:
    """``"10.0.1.0/24"`` -> ``b"\\x18\\x0a\\x00\\x01"`` (host bits must be clear)."""
    return from_network(ipaddress.ip_network(text, strict=True))


def to_network(p: bytes, afi: int):
    plen = p[0]
    size = 4 if afi == AFI_IPV4 else 16
    addr = p[1:].ljust(size, b"\x00")
    if afi == AFI_IPV4:
        return ipaddress.IPv4Network((addr, plen))
    return ipaddress.IPv6Network((addr, plen))


def to_str(p: bytes, afi: int) -> str:
    return str(to_network(p, afi))


def addr_to_str(raw: bytes) -> str:
    """A 4- or 16-octet address as text (IPv4-mapped IPv6 as ``::ffff:a.b.c.d``)."""
    ip = ipaddress.ip_address(bytes(raw))
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return f"::ffff:{ip.ipv4_mapped}"
    return str(ip)


def addr_from_str(text: str) -> bytes:
    return ipaddress.ip_address(text).packed

"""The two grammars every route filter shares: prefix lists and ordered interface globs.

Used by the policy language's ``prefix`` and ``interface`` matches (bgpd/policy), by the
kernel's ``host_routes`` learning (bgpd/kernel) and by the configuration checks, so that
``"10.244.0.0/16 le 32"`` and ``["-cali*", "*"]`` mean the same everywhere.

**Prefix list entries**: ``P`` (exactly P), ``P le M`` (lengths L..M), ``P ge N`` (N..max),
``P ge N le M``; a route matches when its first L bits equal P's (``P/L``) and its own length
lies in the range. Text is parsed at the configuration edge with netaddr (imported on the first parse: a daemon
whose config has no prefix list never loads it); matching runs on wire-format prefixes
(length octet + significant octets), never on address objects.

**Interface globs**: shell globs (``*``, ``?``, ``[...]``), in order; the first that matches
decides, ``-glob`` excludes; no match excludes, except that a list made only of exclusions
ends with an implicit ``*``.
"""

import fnmatch
import re
from typing import TYPE_CHECKING, NamedTuple

from bgpd.wire.constants import AFI_IPV4, AFI_IPV6

MAX_LEN = {AFI_IPV4: 32, AFI_IPV6: 128}
_FAMILY_TEXT = {AFI_IPV4: "IPv4", AFI_IPV6: "IPv6"}

if TYPE_CHECKING:
    import netaddr


class PrefixEntry(NamedTuple):
    """Routes of family ``afi`` whose first ``length`` bits equal ``value`` and whose own
    length lies in ``ge..le``."""

    afi: int
    length: int
    value: int  # the top ``length`` bits of the network address, as an int
    ge: int
    le: int


def parse_network(text: str, what: str = "prefix") -> "netaddr.IPNetwork":
    """``P/L`` or a bare address (a host route); host bits set is an error that says which
    network was meant. Raises ValueError with the reason."""
    import netaddr  # here: ~2 MiB with what it imports, for configs that have prefix lists

    try:
        net = netaddr.IPNetwork(text)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise ValueError(f"{text!r} is not a valid {what}") from None
    if net.ip != net.network:
        raise ValueError(f"{text!r} has host bits set (did you mean {net.cidr}?)")
    return net


def entry(net: "netaddr.IPNetwork", ge: int | None = None, le: int | None = None) -> PrefixEntry:
    """The entry for ``net`` with lengths ``ge..le`` (default: exactly its own length)."""
    afi = AFI_IPV4 if net.version == 4 else AFI_IPV6
    length = net.prefixlen
    top = MAX_LEN[afi]
    lo = length if ge is None else ge
    hi = (top if ge is not None else length) if le is None else le
    if not length <= lo <= hi <= top:
        raise ValueError(f"{net}: lengths {lo}..{hi} are not within {length}..{top}")
    return PrefixEntry(afi, length, net.value >> (top - length), lo, hi)


def parse_prefix_entry(text: str) -> PrefixEntry:
    """``"P"``, ``"P ge N"``, ``"P le M"`` or ``"P ge N le M"``; ValueError with the reason."""
    words = str(text).split()
    if not words:
        raise ValueError("an empty prefix-list entry")
    net = parse_network(words[0])
    afi = AFI_IPV4 if net.version == 4 else AFI_IPV6
    length, top = net.prefixlen, MAX_LEN[afi]
    rest = words[1:]
    if len(rest) % 2:
        raise ValueError(f"{text!r}: expected 'PREFIX [ge N] [le M]'")
    bounds: dict[str, int] = {}
    for k in range(0, len(rest), 2):
        word, num = rest[k].lower(), rest[k + 1]
        if word not in ("ge", "le"):
            raise ValueError(f"{text!r}: unknown word {rest[k]!r} (expected ge or le)")
        if word in bounds:
            raise ValueError(f"{text!r}: {word} given twice")
        if not num.isdigit():
            raise ValueError(f"{text!r}: {word} needs a prefix length, got {num!r}")
        n = int(num)
        if not length <= n <= top:
            raise ValueError(
                f"{text!r}: {word} {n} is out of range for this {_FAMILY_TEXT[afi]} prefix "
                f"({length}..{top})"
            )
        bounds[word] = n
    ge = bounds.get("ge", length)
    le = bounds.get("le", top if "ge" in bounds else length)
    if ge > le:
        raise ValueError(f"{text!r}: le {le} is less than ge {ge}")
    return PrefixEntry(afi, length, net.value >> (top - length), ge, le)


class PrefixList:
    """Any-of over entries, on wire-format prefixes: ``plist(afi, prefix) -> bool``.

    Entries are indexed per family by their length ``L``, then by the top ``L`` bits of their
    network, giving a bit mask of the accepted route lengths (bit ``n`` set: length ``n`` is
    within some entry's ``ge..le``). A route of length ``plen`` is tested at each distinct
    ``L <= plen``: shift its address to ``L`` bits, look the value up, test bit ``plen``.
    The cost grows with the number of distinct entry lengths, not the number of entries.
    """

    __slots__ = ("entries", "_levels", "_lengths")

    def __init__(self, entries) -> None:
        self.entries = tuple(parse_prefix_entry(e) if isinstance(e, str) else e for e in entries)
        index: dict[int, dict[int, dict[int, int]]] = {}
        for e in self.entries:
            by_value = index.setdefault(e.afi, {}).setdefault(e.length, {})
            mask = 0
            for n in range(e.ge, e.le + 1):
                mask |= 1 << n
            by_value[e.value] = by_value.get(e.value, 0) | mask
        self._levels = {
            afi: tuple((length, by_len[length]) for length in sorted(by_len))
            for afi, by_len in index.items()
        }
        self._lengths = {}  # afi -> mask of every length any entry accepts: a one-step reject
        for afi, lv in self._levels.items():
            m = 0
            for _length, table in lv:
                for v in table.values():
                    m |= v
            self._lengths[afi] = m

    def __call__(self, afi: int, prefix: bytes) -> bool:
        plen = prefix[0]
        if not (self._lengths.get(afi, 0) >> plen) & 1:
            return False
        bits = (len(prefix) - 1) << 3
        r = int.from_bytes(prefix[1:], "big")
        for length, table in self._levels[afi]:
            if length > plen:
                return False
            m = table.get(r >> (bits - length))
            if m is not None and (m >> plen) & 1:
                return True
        return False


def parse_interface_glob(text: str) -> tuple[bool, re.Pattern]:
    """``"cali*"`` (include) or ``"-kube*"`` (exclude): ``(include, compiled glob)``."""
    text = str(text).strip()
    include = not text.startswith("-")
    glob = text if include else text[1:].strip()
    if not glob:
        raise ValueError(f"{text!r}: nothing after '-'")
    return include, re.compile(fnmatch.translate(glob))


class InterfaceGlobs:
    """Ordered globs: ``globs(name) -> bool`` (None, no interface: False). Verdicts are
    remembered per name, the memo bounded (pod interfaces come and go)."""

    __slots__ = ("rules", "fallback", "_seen")

    LIMIT = 4096

    def __init__(self, rules) -> None:
        self.rules = tuple(parse_interface_glob(r) if isinstance(r, str) else r for r in rules)
        self.fallback = all(not include for include, _rx in self.rules)
        self._seen: dict = {}

    def __call__(self, name: str | None) -> bool:
        if name is None:
            return False
        r = self._seen.get(name)
        if r is None:
            if len(self._seen) >= self.LIMIT:
                self._seen.clear()
            r = self.fallback
            for include, rx in self.rules:
                if rx.match(name):
                    r = include
                    break
            self._seen[name] = r
        return r

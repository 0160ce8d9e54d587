"""The filter language's values at run time, one Python type per BIRD type.

BIRD tags every value with a type (``T_INT``, ``T_PAIR``...); here the Python class is the tag,
so that ``type(v)`` tells the BIRD type and plain values cost nothing: ``None`` is void,
``int`` is ``int`` (u32), ``bool`` is ``bool``, ``str`` is ``string``; the rest are small
subclasses of ``int`` or ``tuple``. A BIRD 1.6 daemon is one address family, so an IP address
is an ``int`` subclass whose width the family gives.
"""

from bgpd.wire.constants import AS_SEQUENCE, AS_SET

from . import keywords as kw

U32 = 0xFFFFFFFF


class Pair(int):
    """A standard community / pair ``(a, b)``, stored as ``a << 16 | b`` like BIRD."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"({int(self) >> 16},{int(self) & 0xFFFF})"


class Quad(int):
    """A router ID literal (``T_QUAD``)."""

    __slots__ = ()


class Ec(int):
    """An extended community (``T_EC``), the 64-bit value."""

    __slots__ = ()


class Lc(tuple):
    """A large community ``(asn, data1, data2)`` (``T_LC``)."""

    __slots__ = ()


class Ip(int):
    """An IP address of the daemon's family (``T_IP``)."""

    __slots__ = ()


class Net(tuple):
    """A prefix ``(address int, length)`` (``T_PREFIX``), host bits clear."""

    __slots__ = ()


class Path(tuple):
    """An AS path (``T_PATH``): AttrSet.as_path segments ``((type, (asn, ...)), ...)``."""

    __slots__ = ()


class CList(tuple):
    """A community list (``T_CLIST``) of u32 values."""

    __slots__ = ()


class EcList(tuple):
    """An extended community list (``T_ECLIST``) of 64-bit values."""

    __slots__ = ()


class LcList(tuple):
    """A large community list (``T_LCLIST``) of ``(a, b, c)``."""

    __slots__ = ()


class Enum(int):
    """Base of the enum types; each BIRD enum type is its own subclass (see :data:`ENUM`)."""

    __slots__ = ()
    code = 0
    names: dict = {}

    def __repr__(self) -> str:
        return self.names.get(int(self), f"(enum {self.code:x}){int(self)}")


def _enum_class(name: str, code: int) -> type:
    names = {v: n for n, (t, v) in kw.ENUMS.items() if t == code}
    return type(name, (Enum,), {"__slots__": (), "code": code, "names": names})


ENUM = {
    code: _enum_class(name, code)
    for name, code in (
        ("Rts", kw.T_ENUM_RTS),
        ("BgpOrigin", kw.T_ENUM_BGP_ORIGIN),
        ("Scope", kw.T_ENUM_SCOPE),
        ("Rtc", kw.T_ENUM_RTC),
        ("Rtd", kw.T_ENUM_RTD),
        ("Roa", kw.T_ENUM_ROA),
        ("RaPref", kw.T_ENUM_RA_PREFERENCE),
        ("Opaque", 0x3F),  # T_ENUM_EMPTY: how bgp_atomic_aggr and bgp_aggregator read
    )
}
Rts = ENUM[kw.T_ENUM_RTS]
RTS_STATIC = Rts(1)
RTS_INHERIT = Rts(2)
RTS_DEVICE = Rts(3)
RTS_STATIC_DEVICE = Rts(4)
RTS_BGP = Rts(11)


class PathMask(tuple):
    """``[= 1 2 * ? 3..5 =]``: items ``("asn", n)``, ``("range", lo, hi)``, ``("*",)``,
    ``("?",)``; ``("expr", code)`` items are resolved when the filter runs."""

    __slots__ = ()

    def match(self, path) -> bool:
        return path_match(path or (), self)


class FSet:
    """A constant set ``[1, 2..5, (1,*)]`` (``T_SET``).

    ``ranges`` are ``(lo, hi)`` of one type; ``grids`` are BIRD's pair sets
    ``(a1..a2, b1..b2)``: every pair ``(a, b)`` with ``a`` and ``b`` in those bounds.
    ``type`` is the element type (BIRD looks at the tree's root; sets here hold one type).
    """

    __slots__ = ("ranges", "grids", "type", "_exact")

    def __init__(self, items: list, vtype: type) -> None:
        ranges = [i for i in items if not (isinstance(i, tuple) and i and i[0] == "grid")]
        self.grids = tuple(i[1:] for i in items if isinstance(i, tuple) and i and i[0] == "grid")
        self.ranges = tuple(sorted(ranges, key=_range_key))
        self.type = vtype
        self._exact = frozenset(lo for lo, hi in self.ranges if lo == hi)

    def contains(self, v) -> bool:
        if v in self._exact and any(type(lo) is type(v) for lo in self._exact):
            return True
        tv = type(v)
        for lo, hi in self.ranges:
            if type(lo) is tv and _le(lo, v) and _le(v, hi):
                return True
        if self.grids and tv is Pair:
            a, b = v >> 16, v & 0xFFFF
            for alo, ahi, blo, bhi in self.grids:
                if alo <= a <= ahi and blo <= b <= bhi:
                    return True
        return False

    def __eq__(self, other) -> bool:
        return isinstance(other, FSet) and other.ranges == self.ranges and other.grids == self.grids

    def __hash__(self) -> int:
        return hash((self.ranges, self.grids))


def _range_key(r):
    lo = r[0]
    return tuple(lo) if isinstance(lo, tuple) else (int(lo),)


def _le(a, b) -> bool:
    if isinstance(a, tuple):
        return tuple(a) <= tuple(b)
    return int(a) <= int(b)


class PrefixSet:
    """``[ 10.0.0.0/8{16,24}, 192.168.0.0/16+ ]`` (``T_PREFIX_SET``).

    Each entry is ``(address, length, low, high)``. A prefix ``a/n`` matches it when
    ``low <= n <= high`` and ``a`` agrees with the address on the first ``min(n, length)``
    bits: what BIRD's trie answers (``10.1.0.0/24-`` matches ``10.0.0.0/8``).
    """

    __slots__ = ("entries", "bits")

    def __init__(self, entries: list, bits: int) -> None:
        self.entries = tuple(entries)
        self.bits = bits

    def match(self, net) -> bool:
        addr, plen = net
        bits = self.bits
        for eaddr, length, lo, hi in self.entries:
            if lo <= plen <= hi:
                m = plen if plen < length else length
                if (addr ^ eaddr) >> (bits - m) == 0:
                    return True
        return False

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, PrefixSet)
            and sorted(other.entries) == sorted(self.entries)
            and other.bits == self.bits
        )

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.entries)))


def _mask(length: int, bits: int) -> int:
    return ((1 << bits) - 1) ^ ((1 << (bits - length)) - 1)


def net_in_net(a, b, bits: int) -> bool:
    """Prefix ``a`` is ``b`` or inside it (BIRD ``net_in_net``)."""
    if a[1] < b[1]:
        return False
    return a[0] & _mask(b[1], bits) == b[0]


def ip_in_net(ip: int, net, bits: int) -> bool:
    return ip & _mask(net[1], bits) == net[0]


# --- AS path masks (BIRD nest/a-path.c as_path_match) ----------------------------------------


def _positions(path) -> list:
    """The path as positions: one per AS of a sequence, one per set (``(is_set, asns)``)."""
    out = []
    for seg_type, asns in path:
        if seg_type == AS_SET or seg_type == 4:  # AS_SET, AS_CONFED_SET
            out.append((True, tuple(asns)))
        else:
            out.extend((False, (a,)) for a in asns)
    return out


def path_match(path, mask) -> bool:
    """Whether the whole path matches the mask (anchored at both ends), by BIRD's algorithm.

    Positions of the path are the states of a nondeterministic automaton and the mask items
    its input. An AS_SET position stands for any sequence of ASes from the set: a matching
    item may stay on it, and the sets right after a matched position may be skipped.
    """
    pos = _positions(path)
    plen = len(pos)
    mark = [False] * (plen + 1)
    mark[0] = True
    lo = hi = 0
    for item in mask:
        mark[plen] = False
        kind = item[0]
        if kind == "*":
            for i in range(lo, plen + 1):
                mark[i] = True
            hi = plen
            continue
        if kind == "asn":
            a1 = a2 = item[1]
        elif kind == "range":
            a1, a2 = item[1], item[2]
        new_lo = new_hi = -1
        for i in range(hi, lo - 1, -1):
            if not mark[i]:
                continue
            mark[i] = False
            if kind != "?":
                is_set, asns = pos[i]
                if not any(a1 <= a <= a2 for a in asns):
                    continue
            # mark what follows position i
            if pos[i][0]:
                mark[i] = True
            j = i + 1
            while j < plen and pos[j][0] and not mark[j]:
                mark[j] = True
                j += 1
            mark[j] = True
            new_lo = i + (0 if pos[i][0] else 1)
            if new_hi < 0:
                new_hi = j
        if new_hi < 0:
            return False
        lo, hi = new_lo, new_hi
    return mark[plen]


def path_contains(path, asn: int) -> bool:
    return any(asn in asns for _t, asns in path or ())


def path_prepend(path, asn: int) -> Path:
    path = path or ()
    if path and path[0][0] == AS_SEQUENCE and len(path[0][1]) < 255:
        return Path(((AS_SEQUENCE, (asn, *path[0][1])), *path[1:]))
    return Path(((AS_SEQUENCE, (asn,)), *path))


def path_length(path) -> int:
    n = 0
    for seg_type, asns in path or ():
        if seg_type == AS_SEQUENCE:
            n += len(asns)
        elif seg_type == AS_SET:
            n += 1
    return n


def path_first(path) -> int:
    """The first AS (BIRD ``as_path_get_first``: 0 when the path does not start with one)."""
    for seg_type, asns in path or ():
        if seg_type == AS_SEQUENCE and asns:
            return asns[0]
        return 0
    return 0


def path_last(path) -> int:
    """The last AS of the last segment, 0 if it is a set (BIRD ``as_path_get_last``)."""
    res = 0
    for seg_type, asns in path or ():
        if seg_type == AS_SEQUENCE and asns:
            res = asns[-1]
        elif seg_type == AS_SET:
            res = 0
    return res


def path_last_nonaggregated(path) -> int:
    res = 0
    for seg_type, asns in path or ():
        if seg_type == AS_SEQUENCE and asns:
            res = asns[-1]
        elif seg_type == AS_SET:
            break
    return res

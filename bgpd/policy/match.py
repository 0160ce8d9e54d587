"""Match conditions: each compiles a config list into one fast test.

A condition's test has the signature ``test(attrs, prefix, family, route) -> bool``. Lists are
"any of"; the conditions of a term must all hold. Each condition also says what it reads: the
attribute set only (``attr_only``) or the prefix, family or route information too, which
decides whether a policy's verdict can be cached per attribute set.
"""

import ipaddress
import itertools
from collections.abc import Callable
from typing import NamedTuple

from bgpd.rib.filters import InterfaceGlobs, PrefixList
from bgpd.wire.constants import AFI_IPV4, AFI_IPV6

from .values import MAX_LEN, PrefixEntry, as_path_text

Test = Callable[..., bool]

# attrs.cache key of an attribute set's AS path rendered as text
AS_PATH_TEXT = ("policy", "as_path_text")


class Condition(NamedTuple):
    key: str  # the match key it came from ("prefix", "community", ...)
    test: Test
    attr_only: bool  # reads nothing but the attribute set
    costly: bool = False  # worth remembering per attribute set (see memo)


_memo_serial = itertools.count(1)


def memo(test: Test) -> Test:
    """``test`` (an attr-only one) with its verdict remembered in ``attrs.cache``.

    A policy that is not attr-only runs per route; its AS-path regexes and community
    wildcards would then run again for every prefix sharing a set. Attr-only policies do not
    need this: :meth:`Policy.evaluate_cached` remembers their whole verdict.
    """
    key = ("policy", "cond", next(_memo_serial))

    def remembered(attrs, prefix, family, route) -> bool:
        return attrs.memo(key, test, prefix, family, route)

    return remembered


SEEN_LIMIT = 4096  # per-condition memo of neighbor and interface verdicts

# Evaluation order inside a term: cheapest and most selective first.
ORDER = (
    "source",
    "family",
    "neighbor",
    "interface",
    "origin",
    "next_hop",
    "prefix",
    "community",
    "large_community",
    "as_path",
)


# --- prefixes -------------------------------------------------------------------------------


def prefix_test(entries: list[PrefixEntry]) -> Test:
    """Any-of over prefix-list entries, on the wire-format prefix (bgpd/rib/filters.py)."""
    plist = PrefixList(entries)

    def test(attrs, prefix, family, route) -> bool:
        return plist(family[0], prefix)

    return test


# --- communities ----------------------------------------------------------------------------


class CommunityPatterns:
    """Standard communities given as a range per half (``(lo, hi)``, from ``A:B``, ``A:*``,
    ``*:B``, ``A:N-M``...). Split for speed into exact values, ``A:*`` (any low half), ``*:B``
    (any high half), ``*:*`` (anything), and general ranges."""

    __slots__ = ("exact", "high", "low", "any", "ranges")

    def __init__(self, patterns) -> None:
        full = (0, 0xFFFF)
        exact, high, low, ranges = set(), set(), set(), []
        self.any = False
        for h, lo in patterns:
            if h[0] == h[1] and lo[0] == lo[1]:
                exact.add(h[0] << 16 | lo[0])
            elif h == full and lo == full:
                self.any = True
            elif h[0] == h[1] and lo == full:
                high.add(h[0])
            elif lo[0] == lo[1] and h == full:
                low.add(lo[0])
            else:
                ranges.append((h[0], h[1], lo[0], lo[1]))
        self.exact = frozenset(exact)
        self.high = frozenset(high)
        self.low = frozenset(low)
        self.ranges = tuple(ranges)

    def matcher(self) -> Callable[[int], bool]:
        """``matches(community) -> bool``, as a closure over local names (it runs per value)."""
        if self.any:
            return lambda c: True
        exact, high, low, ranges = self.exact, self.high, self.low, self.ranges

        def matches(c: int) -> bool:
            if c in exact:
                return True
            h = c >> 16
            if h in high:
                return True
            lo = c & 0xFFFF
            if lo in low:
                return True
            for h1, h2, l1, l2 in ranges:  # noqa: SIM110
                if h1 <= h <= h2 and l1 <= lo <= l2:
                    return True
            return False

        return matches

    def test(self) -> Test:
        exact = self.exact
        if self.any:
            return lambda attrs, prefix, family, route: bool(attrs.communities)
        if not self.high and not self.low and not self.ranges:
            disjoint = exact.isdisjoint
            return lambda attrs, prefix, family, route: not disjoint(attrs.communities)
        matches = self.matcher()

        def test(attrs, prefix, family, route) -> bool:
            for c in attrs.communities:  # noqa: SIM110 (a loop beats any() + genexpr)
                if matches(c):
                    return True
            return False

        return test


class LargeCommunityPatterns:
    """Large communities given as a range per field (``*`` and ``N-M`` allowed)."""

    __slots__ = ("exact", "ranges")

    def __init__(self, patterns) -> None:
        self.exact = frozenset(
            tuple(lo for lo, _hi in p) for p in patterns if all(lo == hi for lo, hi in p)
        )
        self.ranges = tuple(p for p in patterns if any(lo != hi for lo, hi in p))

    def matcher(self) -> Callable[[tuple], bool]:
        exact, ranges = self.exact, self.ranges

        def matches(c: tuple) -> bool:
            if c in exact:
                return True
            a, b, d = c
            for (a1, a2), (b1, b2), (d1, d2) in ranges:
                if a1 <= a <= a2 and b1 <= b <= b2 and d1 <= d <= d2:
                    return True
            return False

        return matches

    def test(self) -> Test:
        if not self.ranges:
            disjoint = self.exact.isdisjoint
            return lambda attrs, prefix, family, route: not disjoint(attrs.large_communities)
        matches = self.matcher()

        def test(attrs, prefix, family, route) -> bool:
            for c in attrs.large_communities:  # noqa: SIM110
                if matches(c):
                    return True
            return False

        return test


# --- AS path, origin, next hop --------------------------------------------------------------


def _as_path_text(attrs) -> str:
    return as_path_text(attrs.as_path)


def as_path_test(regexes) -> Test:
    """Any regex found (``re.search``) in the AS path text, rendered once per attribute set."""
    searches = tuple(r.search for r in regexes)

    def test(attrs, prefix, family, route) -> bool:
        text = attrs.memo(AS_PATH_TEXT, _as_path_text)
        for search in searches:  # noqa: SIM110
            if search(text) is not None:
                return True
        return False

    return test


def origin_test(origins: frozenset) -> Test:
    return lambda attrs, prefix, family, route: attrs.origin in origins


def next_hop_test(networks: list[tuple[int, int, int]], self_: bool) -> Test:
    """The route's NEXT_HOP (the global address of an IPv6 pair) within one of ``networks``
    (``(afi, length, top bits)``), or, with ``self_``, equal to ``route.next_hop_self``."""
    by_afi: dict[int, tuple] = {}
    for afi, length, value in networks:
        by_afi[afi] = (*by_afi.get(afi, ()), (MAX_LEN[afi] - length, value))
    v4 = by_afi.get(AFI_IPV4, ())
    v6 = by_afi.get(AFI_IPV6, ())
    from_bytes = int.from_bytes

    def test(attrs, prefix, family, route) -> bool:
        nh = attrs.next_hop
        if nh is None:
            return False
        if self_ and route.next_hop_self is not None and nh == route.next_hop_self:
            return True
        if len(nh) == 4:
            nets = v4
        else:
            nets = v6
            if len(nh) == 32:
                nh = nh[:16]
        if nets:
            n = from_bytes(nh, "big")
            for shift, value in nets:
                if n >> shift == value:
                    return True
        return False

    return test


# --- route information ----------------------------------------------------------------------


def source_test(kinds: frozenset) -> Test:
    return lambda attrs, prefix, family, route: route.source_kind in kinds


def family_test(afis: frozenset) -> Test:
    return lambda attrs, prefix, family, route: family[0] in afis


def neighbor_test(networks: list) -> Test:
    """``route.neighbor`` (address text) within one of ``networks`` (``ipaddress`` networks,
    a host route for a single address). Verdicts are remembered per neighbor text: a speaker
    has few neighbors, and their addresses are parsed once."""
    seen: dict = {}

    def decide(text: str | None) -> bool:
        if text is None:
            return False
        try:
            addr = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            return False
        return any(addr.version == net.version and addr in net for net in networks)

    def test(attrs, prefix, family, route) -> bool:
        text = route.neighbor
        try:
            return seen[text]
        except KeyError:
            if len(seen) >= SEEN_LIMIT:
                seen.clear()
            result = seen[text] = decide(text)
            return result

    return test


def interface_test(rules: list) -> Test:
    """Globs over ``route.interface``, in order (bgpd/rib/filters.py); routes without an
    interface never match."""
    globs = InterfaceGlobs(rules)
    return lambda attrs, prefix, family, route: globs(route.interface)

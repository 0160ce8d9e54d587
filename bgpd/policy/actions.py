"""Set actions: a term's ``set:`` block compiled into one function ``attrs, route -> attrs``.

The steps of a block run in a fixed order (see :data:`ORDER`) over a dict of pending field
changes; the fields that really change go through one :meth:`AttrSet.replace`, so the result
is interned. The result depends only on the input set and, for ``next_hop: self`` and a
counted ``as_path_prepend``, on ``route.next_hop_self`` and ``route.local_as``: it is cached
in the input set's ``cache`` under a key holding exactly those, so a block runs once per
(attribute set, export context) however many prefixes share the set.
"""

import itertools
from collections.abc import Callable

from bgpd.wire.attrs import AttrSet
from bgpd.wire.constants import AS_SEQUENCE

from .match import CommunityPatterns, LargeCommunityPatterns

Step = Callable[[AttrSet, dict, object], None]

# Steps run in this order whatever the order of the keys in the config.
ORDER = (
    "origin",
    "local_pref",
    "med",
    "next_hop",
    "as_path_prepend",
    "community_set",
    "community_remove",
    "community_add",
    "large_community_set",
    "large_community_remove",
    "large_community_add",
)

_serial = itertools.count(1)


def set_field(field: str, value) -> Step:
    def step(attrs, state, route) -> None:
        state[field] = value

    return step


def next_hop_self() -> Step:
    def step(attrs, state, route) -> None:
        if route.next_hop_self is not None:
            state["next_hop"] = route.next_hop_self

    return step


def prepend(asns: tuple | None, count: int) -> Step:
    """Prepend ``asns``, or ``route.local_as`` ``count`` times when ``asns`` is None."""

    def step(attrs, state, route) -> None:
        if asns is not None:
            add = asns
        elif route.local_as:
            add = (route.local_as,) * count
        else:
            return  # no local AS given: AS 0 would make the path malformed (RFC 7607)
        path = state.get("as_path", attrs.as_path) or ()
        if path and path[0][0] == AS_SEQUENCE:
            new = ((AS_SEQUENCE, add + path[0][1]), *path[1:])
        else:
            new = ((AS_SEQUENCE, add), *path)
        state["as_path"] = new

    return step


def community_set(values: tuple, field: str = "communities") -> Step:
    values = tuple(dict.fromkeys(values))

    def step(attrs, state, route) -> None:
        state[field] = values

    return step


def community_add(values: tuple, field: str = "communities") -> Step:
    """Append the values not already present (existing order kept)."""
    values = tuple(dict.fromkeys(values))

    def step(attrs, state, route) -> None:
        cur = state.get(field)
        if cur is None:
            cur = getattr(attrs, field)
        missing = tuple(v for v in values if v not in cur)
        if missing:
            state[field] = cur + missing

    return step


def community_remove(patterns: CommunityPatterns | LargeCommunityPatterns, field: str) -> Step:
    matches = patterns.matcher()

    def step(attrs, state, route) -> None:
        cur = state.get(field)
        if cur is None:
            cur = getattr(attrs, field)
        if cur:
            kept = tuple(c for c in cur if not matches(c))
            if len(kept) != len(cur):
                state[field] = kept

    return step


def build(steps: list[Step], uses_local_as: bool, uses_next_hop_self: bool):
    """One function ``apply(attrs, route) -> AttrSet`` running ``steps``, cached per set."""
    steps = tuple(steps)
    serial = next(_serial)

    def compute(attrs: AttrSet, route) -> AttrSet:
        state: dict = {}
        for step in steps:
            step(attrs, state, route)
        changes = {f: v for f, v in state.items() if getattr(attrs, f) != v}
        return attrs.replace(**changes) if changes else attrs

    def remember(attrs: AttrSet, route, key) -> AttrSet:
        return attrs.memo(key, compute, route)

    if uses_local_as and uses_next_hop_self:

        def apply(attrs, route):
            return remember(
                attrs, route, ("policy", "set", serial, route.local_as, route.next_hop_self)
            )

    elif uses_local_as:

        def apply(attrs, route):
            return remember(attrs, route, ("policy", "set", serial, route.local_as))

    elif uses_next_hop_self:

        def apply(attrs, route):
            return remember(attrs, route, ("policy", "set", serial, route.next_hop_self))

    else:
        key = ("policy", "set", serial)

        def apply(attrs, route):
            return attrs.memo(key, compute, route)

    return apply

"""Compiled policies: terms evaluated in order over one route, and chains of policies."""

import itertools
from collections.abc import Callable

from bgpd.wire.attrs import AttrSet

from .match import Condition, memo

ACCEPT = "accept"
REJECT = "reject"
NEXT = "next"

_ACTIONS = {ACCEPT: ACCEPT, REJECT: REJECT, NEXT: NEXT}
_uid = itertools.count(1)


class RouteInfo:
    """What a policy may know about a route besides its attributes and prefix.

    ``source_kind``: the origin source's kind (``bgp``, ``static``, ``kernel``,
    ``connected``, ``local``); ``neighbor``: the address (text) of the BGP neighbor the
    route came from, None for local routes; ``interface``: the route's interface (kernel and
    connected routes); ``local_as``: our AS toward the neighbor being exported to (or
    imported from), for ``as_path_prepend: N``; ``next_hop_self``: the packed address (4 or
    16 octets) ``next_hop: self`` sets, our address toward that neighbor in the route's
    family.
    """

    __slots__ = ("source_kind", "neighbor", "interface", "local_as", "next_hop_self")

    def __init__(
        self,
        source_kind: str = "bgp",
        neighbor: str | None = None,
        interface: str | None = None,
        local_as: int = 0,
        next_hop_self: bytes | None = None,
    ) -> None:
        self.source_kind = source_kind
        self.neighbor = neighbor
        self.interface = interface
        self.local_as = local_as
        self.next_hop_self = next_hop_self

    def __repr__(self) -> str:
        fields = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.__slots__)
        return f"RouteInfo({fields})"


class Term:
    """One term: conditions that must all hold, a set block, and an action."""

    __slots__ = ("name", "conditions", "apply", "action", "tests")

    def __init__(
        self,
        name: str,
        conditions: tuple[Condition, ...],
        apply: Callable | None,
        action: str,
    ) -> None:
        self.name = name
        self.conditions = conditions
        self.tests = tuple(c.test for c in conditions)
        self.apply = apply
        self.action = _ACTIONS[action]  # the canonical object: evaluate() compares with `is`

    @property
    def attr_only(self) -> bool:
        return all(c.attr_only for c in self.conditions)

    def __repr__(self) -> str:
        keys = ",".join(c.key for c in self.conditions) or "any"
        return f"Term({self.name!r}, match={keys}, action={self.action})"


class Policy:
    """A compiled policy: ``evaluate()`` returns the accepted (possibly modified, interned)
    attribute set, or None when the route is rejected.

    ``attr_only`` is true when no condition reads the prefix, the family or the route
    information, so that the verdict depends on the attribute set alone (and, through set
    actions, on ``route.local_as`` and ``route.next_hop_self``): :meth:`evaluate_cached`
    then keeps it in the set's cache. ``uid`` is unique for the process's lifetime (unlike
    ``id()``, never reused by a later policy) and names this policy's cache entries.
    """

    __slots__ = ("name", "terms", "default", "attr_only", "uid", "spec", "_terms", "_accept")

    def __init__(self, name: str, terms: list[Term], default: str = REJECT, spec=None) -> None:
        self.name = name
        self.terms = tuple(terms)
        self.default = default
        self.spec = spec
        self.attr_only = all(t.attr_only for t in self.terms)
        self.uid = next(_uid)
        if self.attr_only:
            self._terms = tuple((t.tests, t.apply, t.action) for t in self.terms)
        else:
            # Evaluated per route: remember the costly attr-only tests per attribute set.
            self._terms = tuple(
                (
                    tuple(
                        memo(c.test) if c.costly and c.attr_only else c.test for c in t.conditions
                    ),
                    t.apply,
                    t.action,
                )
                for t in self.terms
            )
        self._accept = default == ACCEPT

    def __repr__(self) -> str:
        return f"Policy({self.name!r}, {len(self.terms)} terms, default {self.default})"

    def evaluate(self, attrs: AttrSet, prefix: bytes, family, route: RouteInfo):
        """Run the terms in order; the first term whose conditions all hold applies its set
        block, then accepts, rejects or (``next``) goes on with the modified set. Later terms
        match against the modified set. No deciding term: the default."""
        cur = attrs
        for tests, apply, action in self._terms:
            for test in tests:
                if not test(cur, prefix, family, route):
                    break
            else:
                if apply is not None:
                    cur = apply(cur, route)
                if action is ACCEPT:
                    return cur
                if action is REJECT:
                    return None
        return cur if self._accept else None

    def cache_key(self, route: RouteInfo, cache_key=None) -> tuple:
        """The ``attrs.cache`` key :meth:`evaluate_cached` uses for this context."""
        return ("policy", self.uid, cache_key, route.local_as, route.next_hop_self)

    def evaluate_cached(
        self, attrs: AttrSet, prefix: bytes, family, route: RouteInfo, cache_key=None
    ):
        """:meth:`evaluate`, remembered in ``attrs.cache`` when the policy is ``attr_only``.

        ``cache_key`` separates contexts the caller knows differ (an export group, say); the
        key also holds ``route.local_as`` and ``route.next_hop_self``, the only route fields
        an attr-only policy may read, so a wrong ``cache_key`` cannot mix up results.
        """
        if not self.attr_only:
            return self.evaluate(attrs, prefix, family, route)
        key = ("policy", self.uid, cache_key, route.local_as, route.next_hop_self)
        return attrs.memo(key, self.evaluate, prefix, family, route)

    def explain(self, attrs: AttrSet, prefix: bytes, family, route: RouteInfo):
        """``(result, steps)``: the verdict and, per term tried, a dict saying whether it
        matched (else the first condition that failed) and the action taken; for the CLI."""
        steps = []
        cur = attrs
        for term in self.terms:
            failed = None
            for cond in term.conditions:
                if not cond.test(cur, prefix, family, route):
                    failed = cond.key
                    break
            if failed is not None:
                steps.append({"term": term.name, "matched": False, "failed": failed})
                continue
            if term.apply is not None:
                cur = term.apply(cur, route)
            steps.append({"term": term.name, "matched": True, "action": term.action})
            if term.action == ACCEPT:
                return cur, steps
            if term.action == REJECT:
                return None, steps
        steps.append({"term": "default", "matched": True, "action": self.default})
        return (cur if self._accept else None), steps


class PolicyChain:
    """Several policies applied in order (a neighbor's ``import: [a, b]``): a rejection
    stops the chain; an accepted set goes on to the next policy. Empty: accept everything."""

    __slots__ = ("policies", "name", "attr_only", "uid")

    def __init__(self, policies) -> None:
        self.policies = tuple(policies)
        self.name = "+".join(p.name for p in self.policies)
        self.attr_only = all(p.attr_only for p in self.policies)
        self.uid = next(_uid)

    def __repr__(self) -> str:
        return f"PolicyChain({self.name!r})"

    def evaluate(self, attrs: AttrSet, prefix: bytes, family, route: RouteInfo):
        for p in self.policies:
            attrs = p.evaluate(attrs, prefix, family, route)
            if attrs is None:
                return None
        return attrs

    def cache_key(self, route: RouteInfo, cache_key=None) -> tuple:
        return ("policy", self.uid, cache_key, route.local_as, route.next_hop_self)

    def evaluate_cached(
        self, attrs: AttrSet, prefix: bytes, family, route: RouteInfo, cache_key=None
    ):
        """The whole chain's verdict cached per set when every policy is attr-only; otherwise
        each attr-only member still uses its own cache."""
        if not self.attr_only:
            for p in self.policies:
                attrs = p.evaluate_cached(attrs, prefix, family, route, cache_key)
                if attrs is None:
                    return None
            return attrs
        key = ("policy", self.uid, cache_key, route.local_as, route.next_hop_self)
        return attrs.memo(key, self.evaluate, prefix, family, route)

    def explain(self, attrs: AttrSet, prefix: bytes, family, route: RouteInfo):
        steps = []
        for p in self.policies:
            attrs, s = p.explain(attrs, prefix, family, route)
            steps.extend({"policy": p.name, **step} for step in s)
            if attrs is None:
                return None, steps
        return attrs, steps


def chain(policies) -> "Policy | PolicyChain":
    """``policies`` applied in order; a single policy is returned as it is."""
    policies = list(policies)
    if len(policies) == 1:
        return policies[0]
    return PolicyChain(policies)


ACCEPT_ALL = Policy("accept", [], ACCEPT)
REJECT_ALL = Policy("reject", [], REJECT)

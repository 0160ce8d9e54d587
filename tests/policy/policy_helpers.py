"""Shared helpers for the policy tests: build sets, prefixes and one-term policies."""

from bgpd.policy import RouteInfo, compile_policy
from bgpd.wire import prefix as pfx
from bgpd.wire.attrs import AttrSet, intern
from bgpd.wire.constants import AS_SEQUENCE, IPV4_UNICAST, IPV6_UNICAST


def fam(text: str):
    return IPV6_UNICAST if ":" in text else IPV4_UNICAST


def wire(text: str) -> bytes:
    return pfx.from_str(text)


def attrs(**kw) -> AttrSet:
    """An interned set; ``path=[...]`` is shorthand for one AS_SEQUENCE."""
    if "path" in kw:
        path = tuple(kw.pop("path"))
        kw["as_path"] = ((AS_SEQUENCE, path),) if path else ()
    return intern(AttrSet(**kw))


def policy(terms, default="reject", name="t"):
    return compile_policy(name, {"default": default, "terms": terms})


def one(match=None, set=None, action="accept", default="reject"):
    term = {"action": action}
    if match is not None:
        term["match"] = match
    if set is not None:
        term["set"] = set
    return policy([term], default)


def run(p, prefix="10.0.0.0/24", a=None, route=None):
    a = attrs(origin=0) if a is None else a
    return p.evaluate(a, wire(prefix), fam(prefix), route or RouteInfo())


def matches(match, prefix="10.0.0.0/24", a=None, route=None) -> bool:
    return run(one(match), prefix, a, route) is not None


def apply_set(set_spec, a=None, route=None, prefix="10.0.0.0/24"):
    r = run(one(set=set_spec), prefix, a, route)
    assert r is not None
    return r

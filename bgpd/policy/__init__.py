"""Import/export policies: match routes and modify their attributes. Sans-I/O.

The config's ``policies:`` map is compiled once (:func:`compile_policies`) into
:class:`Policy` objects whose :meth:`Policy.evaluate` takes an interned attribute set, the
prefix in wire format, the family and a :class:`RouteInfo`, and returns the accepted
(possibly modified, interned) set or None. Policies whose verdict depends only on the
attribute set (``attr_only``) are evaluated once per set with :meth:`Policy.evaluate_cached`.
See docs/policy.md for the language.
"""

from bgpd.wire.constants import NO_ADVERTISE, NO_EXPORT, NO_EXPORT_SUBCONFED

from .compiler import compile_policies, compile_policy
from .engine import ACCEPT_ALL, REJECT_ALL, Policy, PolicyChain, RouteInfo, Term, chain
from .errors import PolicyError
from .values import (
    BLACKHOLE,
    GRACEFUL_SHUTDOWN,
    NO_PEER,
    WELL_KNOWN_COMMUNITIES,
    as_path_text,
)

__all__ = [
    "ACCEPT_ALL",
    "BLACKHOLE",
    "GRACEFUL_SHUTDOWN",
    "NO_ADVERTISE",
    "NO_EXPORT",
    "NO_EXPORT_SUBCONFED",
    "NO_PEER",
    "REJECT_ALL",
    "WELL_KNOWN_COMMUNITIES",
    "Policy",
    "PolicyChain",
    "PolicyError",
    "RouteInfo",
    "Term",
    "as_path_text",
    "chain",
    "compile_policies",
    "compile_policy",
]

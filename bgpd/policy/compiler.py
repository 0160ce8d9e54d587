"""From the ``policies:`` config (plain dicts and lists) to :class:`Policy` objects.

Every check happens here, once; an invalid spec raises :class:`PolicyError` naming the key
path (``policies.NAME.terms[0].match.prefix[1]``) and the reason.
"""

import difflib

from bgpd.rib.source import PREFERENCE
from bgpd.wire.constants import AFI_IPV4, AFI_IPV6, ORIGIN_NAMES

from . import actions
from . import match as m
from .engine import ACCEPT, NEXT, REJECT, Policy, Term
from .errors import PolicyError
from .values import (
    compile_as_path_regex,
    describe,
    need_int,
    need_str,
    network_bits,
    parse_address,
    parse_community,
    parse_interface_glob,
    parse_large_community,
    parse_network,
    parse_prefix_entry,
)

POLICY_KEYS = ("default", "terms")
TERM_KEYS = ("name", "match", "set", "action")
MATCH_KEYS = (
    "prefix",
    "community",
    "large_community",
    "as_path",
    "neighbor",
    "source",
    "interface",
    "origin",
    "next_hop",
    "family",
)
SET_KEYS = actions.ORDER
_KINDS = ("bgp", "static", "kernel", "connected", "local")
SOURCE_KINDS = _KINDS + tuple(k for k in PREFERENCE if k not in _KINDS)
FAMILIES = {"ipv4": AFI_IPV4, "ipv6": AFI_IPV6}
ORIGINS = {name: code for code, name in enumerate(ORIGIN_NAMES)}
MAX_PREPEND = 32


def _mapping(value, path: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PolicyError(path, f"expected a mapping, got {describe(value)}")
    return value


def _check_keys(spec: dict, allowed: tuple, path: str) -> None:
    for key in spec:
        if not isinstance(key, str):
            raise PolicyError(path, f"keys must be strings, got {describe(key)}")
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise PolicyError(
                f"{path}.{key}", f"unknown key ({hint}known keys: {', '.join(allowed)})"
            )


def _items(value, path: str, allow_empty: bool = False) -> list[tuple[object, str]]:
    """A list's items with their key paths; a single scalar stands for a list of one."""
    if isinstance(value, list | tuple):
        if not value and not allow_empty:
            raise PolicyError(path, "empty list: list at least one value, or drop the key")
        return [(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict) or value is None:
        raise PolicyError(path, f"expected a list, got {describe(value)}")
    return [(value, path)]


def _choice(value, path: str, choices: dict | tuple, what: str):
    text = need_str(value, path, what)
    key = text.lower()
    if key not in choices:
        raise PolicyError(path, f"{text!r} is not one of: {', '.join(choices)}")
    if isinstance(choices, dict):
        return choices[key]
    return choices[choices.index(key)]  # the canonical object: actions are compared with `is`


# --- match ----------------------------------------------------------------------------------


def _condition(key: str, value, path: str) -> m.Condition:
    if key == "prefix":
        entries = [parse_prefix_entry(v, p) for v, p in _items(value, path)]
        return m.Condition(key, m.prefix_test(entries), False)
    if key == "community":
        pats = m.CommunityPatterns(
            [parse_community(v, p, wild=True) for v, p in _items(value, path)]
        )
        return m.Condition(key, pats.test(), True, bool(pats.ranges or pats.high or pats.low))
    if key == "large_community":
        large = m.LargeCommunityPatterns(
            [parse_large_community(v, p, wild=True) for v, p in _items(value, path)]
        )
        return m.Condition(key, large.test(), True, bool(large.ranges))
    if key == "as_path":
        regexes = [compile_as_path_regex(v, p) for v, p in _items(value, path)]
        return m.Condition(key, m.as_path_test(regexes), True, True)
    if key == "neighbor":
        nets = [
            parse_network(need_str(v, p, "an address or prefix"), p, "address or prefix")
            for v, p in _items(value, path)
        ]
        return m.Condition(key, m.neighbor_test(nets), False)
    if key == "source":
        kinds = [_choice(v, p, SOURCE_KINDS, "a source kind") for v, p in _items(value, path)]
        return m.Condition(key, m.source_test(frozenset(kinds)), False)
    if key == "interface":
        rules = [parse_interface_glob(v, p) for v, p in _items(value, path)]
        return m.Condition(key, m.interface_test(rules), False)
    if key == "origin":
        origins = [_choice(v, p, ORIGINS, "an origin") for v, p in _items(value, path)]
        return m.Condition(key, m.origin_test(frozenset(origins)), True)
    if key == "family":
        afis = [_choice(v, p, FAMILIES, "an address family") for v, p in _items(value, path)]
        return m.Condition(key, m.family_test(frozenset(afis)), False)
    if key == "next_hop":
        nets = []
        self_ = False
        for v, p in _items(value, path):
            text = need_str(v, p, "an address, a prefix or 'self'")
            if text.lower() == "self":
                self_ = True
            else:
                nets.append(network_bits(parse_network(text, p, "address or prefix")))
        # "self" compares with route.next_hop_self: not a property of the set alone.
        return m.Condition(key, m.next_hop_test(nets, self_), not self_)
    raise AssertionError(key)


def _match(spec, path: str) -> tuple[m.Condition, ...]:
    spec = _mapping(spec, path)
    _check_keys(spec, MATCH_KEYS, path)
    conds = [_condition(k, spec[k], f"{path}.{k}") for k in m.ORDER if k in spec]
    return tuple(conds)


# --- set ------------------------------------------------------------------------------------


def _set(spec, path: str):
    """The term's set block as one apply function (None when it is empty)."""
    spec = _mapping(spec, path)
    _check_keys(spec, SET_KEYS, path)
    steps = []
    uses_local_as = uses_nh_self = False
    for key in actions.ORDER:
        if key not in spec:
            continue
        value = spec[key]
        p = f"{path}.{key}"
        if key == "origin":
            steps.append(actions.set_field("origin", _choice(value, p, ORIGINS, "an origin")))
        elif key == "local_pref":
            steps.append(actions.set_field("local_pref", need_int(value, p, 0, 0xFFFFFFFF)))
        elif key == "med":
            if isinstance(value, str) and value.strip().lower() == "remove":
                steps.append(actions.set_field("med", None))
            else:
                med = need_int(value, p, 0, 0xFFFFFFFF, "an integer or 'remove'")
                steps.append(actions.set_field("med", med))
        elif key == "next_hop":
            text = need_str(value, p, "'self', 'unchanged' or an address")
            word = text.lower()
            if word == "self":
                steps.append(actions.next_hop_self())
                uses_nh_self = True
            elif word != "unchanged":  # "unchanged": the set keeps its NEXT_HOP
                steps.append(actions.set_field("next_hop", parse_address(text, p)))
        elif key == "as_path_prepend":
            if isinstance(value, list | tuple):
                if not 1 <= len(value) <= MAX_PREPEND:
                    raise PolicyError(p, f"expected 1..{MAX_PREPEND} AS numbers, got {len(value)}")
                asns = tuple(
                    need_int(a, f"{p}[{i}]", 1, 0xFFFFFFFF, "an AS number")
                    for i, a in enumerate(value)
                )
                steps.append(actions.prepend(asns, 0))
            else:
                n = need_int(value, p, 1, MAX_PREPEND, "a count or a list of AS numbers")
                steps.append(actions.prepend(None, n))
                uses_local_as = True
        elif key in ("community_set", "community_add", "community_remove"):
            items = _items(value, p, allow_empty=key == "community_set")
            if key == "community_remove":
                pats = [parse_community(v, ip, wild=True) for v, ip in items]
                steps.append(actions.community_remove(m.CommunityPatterns(pats), "communities"))
            else:
                values = tuple(_exact_community(v, ip) for v, ip in items)
                build = actions.community_set if key == "community_set" else actions.community_add
                steps.append(build(values, "communities"))
        else:  # large_community_*
            items = _items(value, p, allow_empty=key == "large_community_set")
            if key == "large_community_remove":
                pats = [parse_large_community(v, ip, wild=True) for v, ip in items]
                steps.append(
                    actions.community_remove(m.LargeCommunityPatterns(pats), "large_communities")
                )
            else:
                values = tuple(
                    tuple(lo for lo, _hi in parse_large_community(v, ip)) for v, ip in items
                )
                build = (
                    actions.community_set if key == "large_community_set" else actions.community_add
                )
                steps.append(build(values, "large_communities"))
    if not steps:
        return None
    return actions.build(steps, uses_local_as, uses_nh_self)


def _exact_community(value, path: str) -> int:
    (high, _), (low, _) = parse_community(value, path)
    return high << 16 | low


# --- terms and policies ---------------------------------------------------------------------


def _term(spec, path: str, index: int) -> Term:
    spec = _mapping(spec, path)
    _check_keys(spec, TERM_KEYS, path)
    name = f"terms[{index}]"
    if "name" in spec:
        name = need_str(spec["name"], f"{path}.name", "a term name")
    conditions = _match(spec.get("match"), f"{path}.match")
    apply = _set(spec.get("set"), f"{path}.set")
    action = ACCEPT
    if "action" in spec:
        action = _choice(spec["action"], f"{path}.action", (ACCEPT, REJECT, NEXT), "an action")
    return Term(name, conditions, apply, action)


def compile_policy(name: str, spec, root: str = "policies") -> Policy:
    """Compile one policy's spec (the mapping under ``policies.NAME``)."""
    path = f"{root}.{name}"
    spec = _mapping(spec, path)
    _check_keys(spec, POLICY_KEYS, path)
    default = REJECT
    if spec.get("default") is not None:
        default = _choice(spec["default"], f"{path}.default", (ACCEPT, REJECT), "accept or reject")
    raw_terms = spec.get("terms")
    if raw_terms is None:
        raw_terms = []
    if not isinstance(raw_terms, list | tuple):
        raise PolicyError(f"{path}.terms", f"expected a list of terms, got {describe(raw_terms)}")
    terms = []
    names: dict[str, int] = {}
    for i, t in enumerate(raw_terms):
        term = _term(t, f"{path}.terms[{i}]", i)
        if term.name in names:
            raise PolicyError(
                f"{path}.terms[{i}].name",
                f"duplicate term name {term.name!r} (also terms[{names[term.name]}])",
            )
        names[term.name] = i
        terms.append(term)
    return Policy(name, terms, default, spec)


def compile_policies(spec, root: str = "policies") -> dict[str, Policy]:
    """Compile the whole ``policies:`` map: ``{name: Policy}``."""
    spec = _mapping(spec, root)
    out = {}
    for name, body in spec.items():
        if not isinstance(name, str) or not name.strip():
            raise PolicyError(root, f"policy names must be non-empty strings, got {describe(name)}")
        out[name] = compile_policy(name, body, root)
    return out

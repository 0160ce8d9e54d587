"""``show route where <expr>``: a subset of BIRD 1.6's filter expressions (filter/config.Y).

Supported, with BIRD's precedence (``&&`` and ``||`` bind equally, left to right, below the
comparisons; ``!`` binds tightest):

* operators ``= != < > <= >= ~ !~ ! && ||`` and parentheses;
* constants: numbers, ``true``/``false``, IP addresses, prefixes ``a.b.c.d/n``, strings,
  pairs ``(a,b)``, the enums ``RTS_* RTD_* SCOPE_* RTC_* ORIGIN_*``, AS-path masks
  ``[= 1 * 3 ? =]``, and sets ``[ ... ]`` of numbers (``a..b`` ranges), pairs (``(a,*)``
  wildcards) or prefixes (``p+``, ``p-``, ``p{a,b}``);
* route attributes: ``net`` (``.len``, ``.ip``), ``proto``, ``source``, ``dest``, ``gw``,
  ``from``, ``ifname``, ``scope``, ``cast``, ``preference``; BGP attributes ``bgp_path``
  (``.len``, ``.first``, ``.last``), ``bgp_origin``, ``bgp_next_hop``, ``bgp_med``,
  ``bgp_local_pref``, ``bgp_community``, ``bgp_large_community``, ``bgp_originator_id``,
  ``bgp_atomic_aggr``; ``defined(attr)``.

An attribute the route does not have (``bgp_med`` of a static route) makes the expression
fail at run time, as in BIRD, so the route is not shown. Anything else (functions, filters
by name, assignments) is a syntax error.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from .lexer import ENUMS, CliError, Token
from .show import patmatch
from .snapshot import Route, RoutePath


class _Undefined(Exception):
    """A run-time error: the route does not match."""


class _Void:
    pass


VOID = _Void()

SOURCES = {
    "static": 1,
    "inherit": 2,
    "device": 3,
    "static-device": 4,
    "redirect": 5,
    "RIP": 6,
    "OSPF": 7,
    "OSPF-IA": 8,
    "OSPF-E1": 9,
    "OSPF-E2": 10,
    "BGP": 11,
    "pipe": 12,
    "babel": 13,
}
DESTS = {"router": 0, "device": 1, "blackhole": 2, "unreachable": 3, "prohibited": 4}
DESTS["multipath"] = 5
SCOPES = {"host": 0, "link": 1, "site": 2, "org": 3, "univ": 4}
CASTS = {"unicast": 0, "broadcast": 1, "multicast": 2, "anycast": 3}


@dataclass(frozen=True)
class Enum_:
    kind: str
    value: int


@dataclass(frozen=True)
class PathMask:
    items: tuple  # ints, "*" or "?"

    def matches(self, path: tuple[int, ...]) -> bool:
        def m(i: int, j: int) -> bool:
            if i == len(self.items):
                return j == len(path)
            it = self.items[i]
            if it == "*":
                return any(m(i + 1, k) for k in range(j, len(path) + 1))
            if j == len(path):
                return False
            if it == "?" or it == path[j]:
                return m(i + 1, j + 1)
            return False

        return m(0, 0)


@dataclass(frozen=True)
class PrefixPattern:
    net: ipaddress.IPv4Network | ipaddress.IPv6Network
    lo: int
    hi: int

    def matches(self, p) -> bool:
        return (
            p.version == self.net.version
            and self.lo <= p.prefixlen <= self.hi
            and p.supernet(new_prefix=self.net.prefixlen) == self.net
            if p.prefixlen >= self.net.prefixlen
            else False
        )


@dataclass(frozen=True)
class ValueSet:
    kind: str  # int | pair | prefix
    items: tuple

    def contains(self, v) -> bool:
        for it in self.items:
            if self.kind == "prefix":
                if it.matches(v):
                    return True
            elif self.kind == "int":
                lo, hi = it
                if isinstance(v, int) and lo <= v <= hi:
                    return True
            elif (
                self.kind == "pair"
                and isinstance(v, tuple)
                and (it[0] is None or it[0] == v[0])
                and (it[1] is None or it[1] == v[1])
            ):
                return True
        return False


Ctx = tuple[Route, RoutePath]
Expr = Callable[[Ctx], object]


def _attr_getter(name: str) -> Expr | None:
    def bgp(ctx: Ctx):
        a = ctx[1].bgp
        if a is None:
            raise _Undefined(name)
        return a

    getters: dict[str, Expr] = {
        "net": lambda c: c[0].prefix,
        "proto": lambda c: c[1].protocol,
        "source": lambda c: Enum_("RTS_", SOURCES.get(c[1].source, 0)),
        "dest": lambda c: Enum_("RTD_", DESTS.get(c[1].dest, 0)),
        "gw": lambda c: ipaddress.ip_address(c[1].gateway) if c[1].gateway else VOID,
        "from": lambda c: ipaddress.ip_address(c[1].from_address or c[1].gateway or "0.0.0.0"),
        "ifname": lambda c: c[1].iface or "",
        "scope": lambda c: Enum_("SCOPE_", SCOPES.get(c[1].scope, 4)),
        "cast": lambda c: Enum_("RTC_", CASTS.get(c[1].cast, 0)),
        "preference": lambda c: c[1].preference,
        "bgp_path": lambda c: bgp(c).as_path_flat(),
        "bgp_origin": lambda c: Enum_("ORIGIN_", _defined(bgp(c).origin)),
        "bgp_next_hop": lambda c: ipaddress.ip_address(_defined(bgp(c).next_hop[:1] or None)[0]),
        "bgp_med": lambda c: _defined(bgp(c).med),
        "bgp_local_pref": lambda c: _defined(bgp(c).local_pref),
        "bgp_community": lambda c: tuple(bgp(c).communities) if c[1].bgp else (),
        "bgp_large_community": lambda c: tuple(bgp(c).large_communities) if c[1].bgp else (),
        "bgp_originator_id": lambda c: ipaddress.IPv4Address(_defined(bgp(c).originator_id)),
        "bgp_atomic_aggr": lambda c: _defined(bgp(c).atomic_aggregate or None) and True,
    }
    return getters.get(name)


def _defined(v):
    if v is None:
        raise _Undefined("undefined")
    return v


def _cmp(a, b) -> int:
    if isinstance(a, _Void) or isinstance(b, _Void):
        raise _Undefined("void")
    if isinstance(a, Enum_) and isinstance(b, Enum_):
        if a.kind != b.kind:
            raise _Undefined("incompatible")
        a, b = a.value, b.value
    elif type(a) is not type(b) and not (isinstance(a, int) and isinstance(b, int)):
        raise _Undefined("incompatible")
    if a == b:
        return 0
    try:
        return -1 if a < b else 1
    except TypeError:
        raise _Undefined("incomparable")


def _match(a, b) -> bool:
    """BIRD's ``~``."""
    if isinstance(b, ValueSet):
        if b.kind == "pair" and isinstance(a, tuple) and all(isinstance(x, tuple) for x in a):
            return any(b.contains(x) for x in a)  # clist ~ pair set (an empty clist too)
        return b.contains(a)
    if isinstance(b, PathMask):
        if not isinstance(a, tuple):
            raise _Undefined("mask")
        return b.matches(a)
    if isinstance(a, str) and isinstance(b, str):
        return patmatch(b, a)
    if isinstance(b, ipaddress.IPv4Network | ipaddress.IPv6Network):
        if isinstance(a, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return a.version == b.version and a in b
        if isinstance(a, ipaddress.IPv4Network | ipaddress.IPv6Network):
            return a.version == b.version and a.subnet_of(b)  # type: ignore[arg-type]
    if isinstance(a, tuple) and isinstance(b, tuple) and len(b) in (2, 3):
        return b in a  # clist ~ pair
    raise _Undefined("match")


class _Parser:
    def __init__(self, toks: list[Token], pos: int, ipv6: bool) -> None:
        self.toks = toks
        self.pos = pos
        self.ipv6 = ipv6

    def peek(self) -> Token | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self) -> Token:
        t = self.peek()
        if t is None:
            raise CliError("syntax error")
        self.pos += 1
        return t

    def expect_op(self, op: str) -> None:
        t = self.take()
        if not t.is_op(op):
            raise CliError("syntax error")

    # term: unary (cmp unary)* joined by && ||
    def term(self) -> Expr:
        left = self.comparison()
        while (t := self.peek()) is not None and t.is_op("&&", "||"):
            self.pos += 1
            right = self.comparison()
            if t.value == "&&":
                left = (lambda a, b: lambda c: bool(a(c)) and bool(b(c)))(left, right)
            else:
                left = (lambda a, b: lambda c: bool(a(c)) or bool(b(c)))(left, right)
        return left

    def comparison(self) -> Expr:
        left = self.unary()
        t = self.peek()
        if t is not None and t.is_op("=", "!=", "<", ">", "<=", ">=", "~", "!~"):
            self.pos += 1
            right = self.unary()
            op = t.value
            if op == "~":
                return lambda c: _match(left(c), right(c))
            if op == "!~":
                return lambda c: not _match(left(c), right(c))
            test = {
                "=": lambda r: r == 0,
                "!=": lambda r: r != 0,
                "<": lambda r: r < 0,
                ">": lambda r: r > 0,
                "<=": lambda r: r <= 0,
                ">=": lambda r: r >= 0,
            }[op]
            return lambda c: test(_cmp(left(c), right(c)))
        return left

    def unary(self) -> Expr:
        t = self.peek()
        if t is not None and t.is_op("!"):
            self.pos += 1
            inner = self.unary()
            return lambda c: not _truth(inner(c))
        return self.postfix(self.primary())

    def postfix(self, e: Expr) -> Expr:
        while (t := self.peek()) is not None and t.is_op("."):
            self.pos += 1
            m = self.take()
            name = m.value if m.kind in ("KW", "SYM") else None
            if name == "len":
                e = (lambda f: lambda c: _length(f(c)))(e)
            elif name == "ip":
                e = (lambda f: lambda c: f(c).network_address)(e)
            elif name == "first":
                e = (lambda f: lambda c: _defined(f(c)[:1] or None)[0])(e)
            elif name == "last":
                e = (lambda f: lambda c: _defined(f(c)[-1:] or None)[0])(e)
            else:
                raise CliError("syntax error")
        return e

    def primary(self) -> Expr:
        t = self.take()
        if t.is_op("("):
            # a pair (a,b) or a parenthesised term
            save = self.pos
            first = self.term()
            if (n := self.peek()) is not None and n.is_op(","):
                self.pos = save
                a = self.number()
                self.expect_op(",")
                b = self.number()
                self.expect_op(")")
                return lambda c: (a, b)
            self.expect_op(")")
            return first
        if t.kind == "NUM":
            return self._prefix_or(t)
        if t.kind == "IP":
            return self._prefix_or(t)
        if t.kind == "RTRID":
            v = t.value
            return lambda c: v
        if t.kind == "TEXT":
            s = t.value
            return lambda c: s
        if t.kind == "ENUM":
            kind, value = t.value  # type: ignore[misc]
            en = Enum_(kind, value)
            return lambda c: en
        if t.is_kw("true", "false"):
            b = t.value == "true"
            return lambda c: b
        if t.is_op("[="):
            return self.path_mask()
        if t.is_op("["):
            return self.value_set()
        if t.is_kw("defined"):
            self.expect_op("(")
            inner = self.primary()
            self.expect_op(")")

            def defined(c, inner=inner):
                try:
                    return not isinstance(inner(c), _Void)
                except _Undefined:
                    return False

            return defined
        if t.kind in ("KW", "SYM"):
            getter = _attr_getter(str(t.value))
            if getter is not None:
                return getter
            if t.kind == "SYM":
                raise CliError(f"{t.value}: variable expected.")
        raise CliError("syntax error")

    def number(self) -> int:
        t = self.take()
        if t.kind != "NUM":
            raise CliError("syntax error")
        return int(t.value)  # type: ignore[arg-type]

    def _prefix_or(self, t: Token) -> Expr:
        if t.kind == "IP" and (n := self.peek()) is not None and n.is_op("/"):
            self.pos += 1
            length = self.number()
            net = make_prefix(t.value, length)
            return lambda c: net
        v = t.value
        return lambda c: v

    def path_mask(self) -> Expr:
        items: list = []
        while True:
            t = self.take()
            if t.is_op("=]"):
                break
            if t.kind == "NUM" or t.is_op("*", "?"):
                items.append(t.value)
            else:
                raise CliError("syntax error")
        mask = PathMask(tuple(items))
        return lambda c: mask

    def value_set(self) -> Expr:
        kind = None
        items: list = []
        while True:
            t = self.take()
            if t.is_op("]") and not items:
                break
            if t.kind == "NUM":
                lo = hi = int(t.value)  # type: ignore[arg-type]
                if (n := self.peek()) is not None and n.is_op(".."):
                    self.pos += 1
                    hi = self.number()
                k, item = "int", (lo, hi)
            elif t.is_op("("):
                a = self._pair_part()
                self.expect_op(",")
                b = self._pair_part()
                self.expect_op(")")
                k, item = "pair", (a, b)
            elif t.kind == "IP":
                self.expect_op("/")
                net = make_prefix(t.value, self.number())
                lo, hi = net.prefixlen, net.prefixlen
                n = self.peek()
                if n is not None and n.is_op("+"):
                    self.pos += 1
                    hi = net.max_prefixlen
                elif n is not None and n.is_op("-"):
                    self.pos += 1
                    lo = 0
                elif n is not None and n.is_op("{"):
                    self.pos += 1
                    lo = self.number()
                    self.expect_op(",")
                    hi = self.number()
                    self.expect_op("}")
                k, item = "prefix", PrefixPattern(net, lo, hi)
            else:
                raise CliError("syntax error")
            if kind is not None and k != kind:
                raise CliError("syntax error")
            kind = k
            items.append(item)
            t = self.take()
            if t.is_op("]"):
                break
            if not t.is_op(","):
                raise CliError("syntax error")
        vs = ValueSet(kind or "int", tuple(items))
        return lambda c: vs

    def _pair_part(self) -> int | None:
        t = self.take()
        if t.is_op("*"):
            return None
        if t.kind == "NUM":
            return int(t.value)  # type: ignore[arg-type]
        raise CliError("syntax error")


def _truth(v) -> bool:
    if not isinstance(v, bool):
        raise _Undefined("not a bool")
    return v


def _length(v) -> int:
    if isinstance(v, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return v.prefixlen
    if isinstance(v, tuple):
        return len(v)
    raise _Undefined("len")


def make_prefix(addr, length: int):
    """``IP/len`` as BIRD's grammar takes it: host bits set is ``Invalid prefix``."""
    try:
        return ipaddress.ip_network(f"{addr}/{length}", strict=True)
    except ValueError:
        raise CliError("Invalid prefix")


def compile_where(
    toks: list[Token], pos: int, ipv6: bool = False
) -> tuple[Callable[[Route, RoutePath], bool], int]:
    """Compile the term starting at ``toks[pos]``; returns the predicate and the position
    after the term. The predicate is False where BIRD's filter would fail at run time."""
    p = _Parser(toks, pos, ipv6)
    expr = p.term()

    def predicate(route: Route, path: RoutePath) -> bool:
        try:
            v = expr((route, path))
        except (_Undefined, TypeError, ValueError, IndexError, AttributeError):
            return False  # BIRD: a run-time error in the filter, the route is not shown
        return v is True

    return predicate, p.pos


__all__ = ["compile_where", "make_prefix", "ENUMS"]

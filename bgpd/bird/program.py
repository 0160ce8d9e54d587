"""BIRD 1.6 filters compiled to Python closures, run over bgpd's routes.

Each filter (named, or inline in a protocol) becomes a :class:`Program`: its syntax tree
(:mod:`.ast`) compiled once into nested closures, so that running it on a route is a chain of
direct calls, not a walk over the tree. The semantics are BIRD 1.6.8's (filter/filter.c),
including the corners Calico depends on:

* an undefined attribute is *void*. ``void < x`` is true and ``x < void`` false (BIRD's
  "hack for else" in ``val_compare``), so ``krt_metric < 1024`` holds for a route without a
  metric, ``bgp_local_pref > N`` (compiled as ``N < bgp_local_pref``) does not; ``=`` and
  ``!=`` compare by ``val_same`` (different types are unequal, never an error); ``~`` on a void
  value and arithmetic with one are runtime errors;
* ``defined()`` is true for the static attributes (``source``, ``ifname``...), ``ifname`` is
  ``""`` for a route without an interface; ``bgp_community`` and the other lists read as empty
  lists when absent;
* ``accept``/``reject`` end the whole filter, even from inside a function, and even from a
  function called inside an expression; falling off the end of a filter is an error, the route
  is rejected; ``return`` outside a function is the same error;
* ``&&`` and ``||`` short-circuit and want booleans; ``if`` wants a boolean;
* integers are u32: ``2147483647 - x`` wraps; ``/`` by zero is a runtime error;
* ``net = [set]`` is always false and ``!=`` always true (a prefix is never "the same" as a
  set); ``net ~ [set]`` matches prefix sets with length ranges;
* AS-path masks ``[= 1 * ? 2..3 =]`` match the whole path, an AS_SET counting as one position
  that may stand for several ASes (BIRD's ``as_path_match``).

A runtime error never escapes: the route is dropped and :class:`Verdict` carries
``file:line: message`` (BIRD logs ``filters, line N: message``).

The route a filter sees is a :class:`RouteView` over bgpd's own data: the prefix in wire form,
the source kind, interface, kernel metric and tunnel, preference, and the interned
:class:`~bgpd.wire.attrs.AttrSet`. BGP attributes read from and write to the AttrSet; the
result is a new interned set (``AttrSet.replace``), the very same object when nothing
changed. ``krt_metric``, ``krt_tunnel`` and ``preference`` are returned beside it.
"""

import itertools
import logging
import operator

from bgpd.wire import attrs as _attrs_module
from bgpd.wire.attrs import SAME, AttrSet

from . import ast
from .errors import FilterRuntimeError
from .model import pattern_regex
from .values import (
    ENUM,
    RTS_BGP,
    RTS_DEVICE,
    RTS_INHERIT,
    RTS_STATIC,
    RTS_STATIC_DEVICE,
    U32,
    CList,
    Ec,
    EcList,
    Enum,
    FSet,
    Ip,
    Lc,
    LcList,
    Net,
    Pair,
    Path,
    PathMask,
    PrefixSet,
    Quad,
    ip_in_net,
    net_in_net,
    path_contains,
    path_first,
    path_last,
    path_last_nonaggregated,
    path_length,
    path_match,
    path_prepend,
)

log = logging.getLogger("bgpd.bird.filter")

# statement outcomes (BIRD F_*); None: go on
ACCEPT = 2
REJECT = 3
ERROR = 4
RETURN = 5

_ATTRSET_FIELDS = frozenset(getattr(_attrs_module, "_FIELDS", ()))
_uid = itertools.count(1)
_MISS = object()
_UNSET = object()  # unset() in an export filter: gone from the result, still read as before

Opaque = ENUM[0x3F]
Origin = ENUM[0x31]
Rtd = ENUM[0x34]
Scope = ENUM[0x32]
Rtc = ENUM[0x33]

SOURCES = {
    "bgp": RTS_BGP,
    "kernel": RTS_INHERIT,
    "inherit": RTS_INHERIT,
    "static": RTS_STATIC,
    "local": RTS_STATIC,
    "static-device": RTS_STATIC_DEVICE,
    "direct": RTS_DEVICE,
    "connected": RTS_DEVICE,
    "device": RTS_DEVICE,
}
DESTS = {
    "router": Rtd(0),
    "device": Rtd(1),
    "blackhole": Rtd(2),
    "unreachable": Rtd(3),
    "prohibit": Rtd(4),
    "multipath": Rtd(5),
}

# dynamic attributes: name -> (BIRD storage type, AttrSet field or None for a temporary)
INT, STRING, QUAD_, OPAQUE, IPADDR, ASPATH, BITFIELD, INTSET, ECSET, LCSET = range(10)
DYN_ATTRS = {
    "bgp_origin": (INT, "origin"),
    "bgp_path": (ASPATH, "as_path"),
    "bgp_next_hop": (IPADDR, "next_hop"),
    "bgp_med": (INT, "med"),
    "bgp_local_pref": (INT, "local_pref"),
    "bgp_atomic_aggr": (OPAQUE, "atomic_aggregate"),
    "bgp_aggregator": (OPAQUE, "aggregator"),
    "bgp_community": (INTSET, "communities"),
    "bgp_originator_id": (QUAD_, "originator_id"),
    "bgp_cluster_list": (INTSET, "cluster_list"),
    "bgp_ext_community": (ECSET, "ext_communities"),
    "bgp_large_community": (LCSET, "large_communities"),
    "krt_source": (INT, None),
    "krt_metric": (INT, None),
    "krt_prefsrc": (IPADDR, None),
    "krt_tunnel": (STRING, None),
    "ospf_router_id": (QUAD_, None),
}
for _n in [
    "krt_realm",
    "krt_scope",
    "krt_mtu",
    "krt_window",
    "krt_rtt",
    "krt_rttvar",
    "krt_sstresh",
    "krt_cwnd",
    "krt_advmss",
    "krt_reordering",
    "krt_hoplimit",
    "krt_initcwnd",
    "krt_rto_min",
    "krt_initrwnd",
    "krt_quickack",
    "ospf_metric1",
    "ospf_metric2",
    "ospf_tag",
    "rip_metric",
    "rip_tag",
    "babel_metric",
    "ra_preference",
    "ra_lifetime",
]:
    DYN_ATTRS[_n] = (INT, None)
for _n in [
    "krt_lock_mtu",
    "krt_lock_window",
    "krt_lock_rtt",
    "krt_lock_rttvar",
    "krt_lock_sstresh",
    "krt_lock_cwnd",
    "krt_lock_advmss",
    "krt_lock_reordering",
    "krt_lock_hoplimit",
    "krt_lock_rto_min",
    "krt_feature_ecn",
    "krt_feature_allfrag",
]:
    DYN_ATTRS[_n] = (BITFIELD, None)
# what each storage type reads as (static type for the compiler)
_DYN_TYPE = {
    INT: int,
    STRING: str,
    QUAD_: Quad,
    OPAQUE: Opaque,
    IPADDR: Ip,
    ASPATH: Path,
    BITFIELD: bool,
    INTSET: CList,
    ECSET: EcList,
    LCSET: LcList,
}
_DYN_TYPE_SPECIAL = {"bgp_origin": Origin}
# temporary attributes the route view carries
VIEW_TEMPS = ("krt_metric", "krt_source", "krt_tunnel")


class RouteView:
    """The route a filter sees, over bgpd's data.

    ``prefix``: the prefix in wire form (length octet and significant octets); ``ipv6``: its
    family; ``source``: the kind of origin (``bgp``, ``kernel``, ``static``,
    ``static-device``, ``direct``; bgpd's ``connected``/``local`` are accepted too);
    ``ifname``: the outgoing interface ("" without one); ``krt_metric``, ``krt_source``: the
    kernel route's metric and protocol (kernel-learned routes, None otherwise);
    ``krt_tunnel``: Calico's tunnel attribute; ``preference``: BIRD's route preference;
    ``attrs``: the interned AttrSet; ``gw``: the gateway (packed) or None; ``proto``: the name
    of the protocol the route came from; ``dest``: ``router``, ``device``, ``blackhole``,
    ``unreachable``, ``prohibit`` or ``multipath``.
    """

    __slots__ = (
        "prefix",
        "ipv6",
        "source",
        "ifname",
        "krt_metric",
        "krt_source",
        "krt_tunnel",
        "preference",
        "attrs",
        "gw",
        "proto",
        "dest",
        "ifindex",
    )

    def __init__(
        self,
        prefix: bytes,
        attrs: AttrSet,
        source: str = "bgp",
        *,
        ipv6: bool = False,
        ifname: str = "",
        krt_metric: int | None = None,
        krt_source: int | None = None,
        krt_tunnel: str | None = None,
        preference: int | None = None,
        gw: bytes | None = None,
        proto: str = "",
        dest: str = "router",
        ifindex: int = 0,
    ) -> None:
        self.prefix = prefix
        self.ipv6 = ipv6
        self.source = source
        self.ifname = ifname or ""
        self.krt_metric = krt_metric
        self.krt_source = krt_source
        self.krt_tunnel = krt_tunnel
        if preference is None:
            # a preference an import filter put on the set (AttrSet.preference, where the
            # AttrSet has it), else the source's
            preference = getattr(attrs, "preference", None)
            if preference is None:
                preference = _DEFAULT_PREF.get(source, 100)
        self.preference = preference
        self.attrs = attrs
        self.gw = gw
        self.proto = proto
        self.dest = dest
        self.ifindex = ifindex

    def __repr__(self) -> str:
        return f"RouteView({self.prefix.hex()}, {self.source}, {self.attrs!r})"


_DEFAULT_PREF = {
    "bgp": 100,
    "kernel": 10,
    "inherit": 10,
    "static": 200,
    "local": 200,
    "static-device": 200,
    "direct": 240,
    "connected": 240,
    "device": 240,
}


class Verdict:
    """A filter's answer for one route.

    ``accepted``; ``attrs``: the resulting interned AttrSet (the input set itself when the
    filter changed nothing); ``krt_metric``, ``krt_tunnel``, ``preference``: the temporary
    values after the filter (the view's when it did not set them); ``temps``: every
    non-BGP attribute the filter set (``krt_*``, ``ospf_*``...), for the caller that wants
    them; ``statics``: static attributes it set (``gw``, ``ifname``, ``dest``, ``scope``,
    ``from``), which bgpd does not apply yet; ``error``: ``file:line: message`` when a runtime
    error dropped the route (``accepted`` is then False).
    """

    __slots__ = ("accepted", "attrs", "krt_metric", "krt_tunnel", "preference", "temps")
    __slots__ += ("statics", "error")

    def __init__(self, accepted, attrs, krt_metric, krt_tunnel, preference, temps, statics, error):
        self.accepted = accepted
        self.attrs = attrs
        self.krt_metric = krt_metric
        self.krt_tunnel = krt_tunnel
        self.preference = preference
        self.temps = temps
        self.statics = statics
        self.error = error

    def __repr__(self) -> str:
        what = "accept" if self.accepted else ("error" if self.error else "reject")
        return (
            f"Verdict({what}, metric={self.krt_metric}, tunnel={self.krt_tunnel!r}, "
            f"pref={self.preference}, {self.attrs!r}{', ' + self.error if self.error else ''})"
        )


class _Stop(Exception):
    """accept/reject/error from a function called inside an expression."""

    def __init__(self, code: int) -> None:
        self.code = code


class _Run:
    """The state of one filter run: the route, the attributes changed so far."""

    __slots__ = ("view", "attrs", "changed", "net", "retval", "statics", "ipv6")

    def __init__(self) -> None:
        self.view = None
        self.attrs = None
        self.changed: dict = {}
        self.net = None
        self.retval = None
        self.statics = None
        self.ipv6 = False


# --- BIRD's value operations ------------------------------------------------------------------

CMP_ERROR = 999
_INT_LIKE = (int, bool, Pair, Quad, Ec, Ip)


def val_compare(a, b, ipv6: bool = False) -> int:
    ta, tb = type(a), type(b)
    if ta is not tb:
        if a is None:
            return -1
        if b is None:
            return 1
        if not ipv6 and {ta, tb} == {Quad, Ip}:
            return (int(a) > int(b)) - (int(a) < int(b))
        return CMP_ERROR
    if a is None:
        return 0
    if ta in _INT_LIKE or issubclass(ta, Enum):
        return (a > b) - (a < b)
    if ta is Lc or ta is Net or ta is str:
        return (a > b) - (a < b)
    return CMP_ERROR


def val_same(a, b, ipv6: bool = False) -> bool:
    rc = val_compare(a, b, ipv6)
    if rc != CMP_ERROR:
        return rc == 0
    if type(a) is not type(b):
        return False
    return a == b


def _net_of(view: RouteView, ipv6: bool) -> Net:
    p = view.prefix
    size = 16 if ipv6 else 4
    return Net((int.from_bytes(p[1:].ljust(size, b"\0"), "big"), p[0]))


def val_in_range(a, b, ipv6: bool) -> int:
    """BIRD's ``~``: 1, 0 or CMP_ERROR."""
    ta, tb = type(a), type(b)
    bits = 128 if ipv6 else 32
    if ta is Path and tb is PathMask:
        return path_match(a, b)
    if ta is int and tb is Path:
        return path_contains(b, a)
    if (ta is Pair or ta is Quad) and tb is CList:
        return int(a) in b
    if not ipv6 and ta is Ip and tb is CList:
        return int(a) in b
    if ta is Ec and tb is EcList:
        return int(a) in b
    if ta is Lc and tb is LcList:
        return tuple(a) in b
    if ta is str and tb is str:
        return pattern_regex(b).match(a) is not None
    if ta is Ip and tb is Net:
        return ip_in_net(a, b, bits)
    if ta is Net and tb is Net:
        return net_in_net(a, b, bits)
    if ta is Net and tb is PrefixSet:
        return b.match(a)
    if tb is not FSet:
        return CMP_ERROR
    if ta is b.type or (not ipv6 and ta is Quad and b.type is Ip):
        if ta is Quad and b.type is Ip:
            a = Ip(a)
        return b.contains(a)
    if ta is CList:
        if b.type is Pair:
            return any(b.contains(Pair(v)) for v in a)
        if b.type is Quad or (not ipv6 and b.type is Ip):
            cls = b.type
            return any(b.contains(cls(v)) for v in a)
        return CMP_ERROR if a else 0
    if ta is EcList:
        if b.type is not Ec:
            return CMP_ERROR if a else 0
        return any(b.contains(Ec(v)) for v in a)
    if ta is LcList:
        if b.type is not Lc:
            return CMP_ERROR if a else 0
        return any(b.contains(Lc(v)) for v in a)
    if ta is Path:
        # as_path_match_set: any AS of the path in the set
        return any(b.contains(asn) for _t, asns in a for asn in asns)
    return CMP_ERROR


def make_ec(kind: int, key, value: int) -> tuple:
    """An extended community ``(kind, key, value)`` like BIRD builds it: ``(Ec, bad)`` where
    ``bad`` says the value did not fit its 16 bits."""
    if type(key) in (Quad, Ip):
        ipv4 = True
        key = int(key)
    else:
        ipv4 = False
    if kind == 0x8000:  # generic
        return Ec((key << 32) | value), False
    if ipv4:
        ec = ((kind | 0x0100) << 48) | (key << 16) | (value & 0xFFFF)
        return Ec(ec), value > 0xFFFF
    if key < 0x10000:
        return Ec((kind << 48) | (key << 32) | value), False
    ec = ((kind | 0x0200) << 48) | (key << 16) | (value & 0xFFFF)
    return Ec(ec), value > 0xFFFF


# --- compilation ------------------------------------------------------------------------------


class _Ctx:
    """What the compiler needs: the family, whether a route exists (constants: no), and
    whether the filter is an export filter (BIRD runs those with FF_FORCE_TMPATTR)."""

    def __init__(self, ipv6: bool, route: bool = True, export: bool = True) -> None:
        self.ipv6 = ipv6
        self.route = route
        self.export = export
        self.bits = 128 if ipv6 else 32
        self.reads: set = set()  # what the program reads besides the AttrSet
        self.prints = False
        self.functions: dict = {}  # function bodies compiled for this program


def _err(node, message: str) -> FilterRuntimeError:
    return FilterRuntimeError(node.file, node.line, message)


def compile_expr(node, cx: _Ctx):
    """``(fn, static type)``: ``fn(run)`` returns the value; the type is a Python class when
    the value is always of it or void (None when unknown)."""
    m = _EXPR.get(type(node))
    return m(node, cx)


def _c_const(node: ast.Const, cx):
    v = node.value
    return (lambda r: v), type(v)


def _c_var(node: ast.Var, cx):
    cell = _cell(node.sym)
    return (lambda r: cell[0]), node.sym.vtype


def _cell(sym) -> list:
    if sym.slot is None:
        sym.slot = [None]
    return sym.slot


def _no_route(node):
    def fn(r):
        raise _err(node, "No route to access")

    return fn


def _c_static(node: ast.StaticAttr, cx):
    if not cx.route:
        return _no_route(node), None
    name = node.name
    cx.reads.add(name)
    ipv6 = cx.ipv6
    if name == "net":
        # the run computes it once, before the filter starts (Program._execute)
        return _GET_NET, Net
    if name == "source":
        return (lambda r: SOURCES.get(r.view.source, RTS_STATIC)), ENUM[0x30]
    if name == "ifname":

        def get_ifname(r):
            s = r.statics
            if s is not None and "ifname" in s:
                return s["ifname"]
            return r.view.ifname

        return get_ifname, str
    if name == "proto":
        return (lambda r: r.view.proto), str
    if name in ("from", "gw"):
        size = 16 if ipv6 else 4

        def get_gw(r):
            s = r.statics
            if s is not None and name in s:
                return s[name]
            g = r.view.gw
            return Ip(int.from_bytes(g[:size], "big")) if g else Ip(0)

        return get_gw, Ip
    if name == "dest":
        return (lambda r: DESTS.get(r.view.dest, Rtd(0))), Rtd
    if name == "scope":
        return (lambda r: (r.statics or {}).get("scope", Scope(4))), Scope
    if name == "cast":
        return (lambda r: Rtc(0)), Rtc
    if name == "ifindex":
        return (lambda r: r.view.ifindex), int
    raise AssertionError(name)


_GET_NET = operator.attrgetter("net")


def _attr_reader(name: str, cx: _Ctx):
    """The function reading dynamic attribute ``name`` from the run (changes first)."""
    kind, field = DYN_ATTRS[name]
    ipv6 = cx.ipv6
    if field is None:
        if name in VIEW_TEMPS:
            cx.reads.add(name)

            def get_temp(r):
                ch = r.changed
                if name in ch:
                    v = ch[name]
                    if v is not _UNSET:
                        return v
                return getattr(r.view, name)

            return get_temp

        def get_other(r):
            v = r.changed.get(name)
            return None if v is _UNSET else v

        return get_other
    conv = _FROM_ATTRSET[kind]
    if name == "bgp_origin":

        def conv(v, ipv6):  # noqa: F811
            return None if v is None else Origin(v)

    def get(r):
        ch = r.changed
        if name in ch:
            v = ch[name]
            if v is not _UNSET:
                return v
        return conv(getattr(r.attrs, field), ipv6)

    # the common int attributes without conversion
    if kind == INT and name != "bgp_origin":

        def get(r):  # noqa: F811
            ch = r.changed
            if name in ch:
                v = ch[name]
                if v is not _UNSET:
                    return v
            return getattr(r.attrs, field)

    return get


def _conv_ip(v, ipv6):
    if v is None:
        return None
    return Ip(int.from_bytes(v[:16] if ipv6 else v[:4], "big"))


_FROM_ATTRSET = {
    INT: lambda v, ipv6: v,
    ASPATH: lambda v, ipv6: None if v is None else Path(v),
    IPADDR: _conv_ip,
    OPAQUE: lambda v, ipv6: Opaque(0) if v else None,
    INTSET: lambda v, ipv6: CList(
        int.from_bytes(x, "big") if isinstance(x, bytes) else x for x in v
    ),
    QUAD_: lambda v, ipv6: None if v is None else Quad(int.from_bytes(v, "big")),
    ECSET: lambda v, ipv6: EcList(int.from_bytes(x, "big") for x in v),
    LCSET: lambda v, ipv6: LcList(tuple(x) for x in v),
}


def _c_dyn(node: ast.DynAttr, cx):
    if not cx.route:
        return _no_route(node), None
    t = _DYN_TYPE_SPECIAL.get(node.name) or _DYN_TYPE[DYN_ATTRS[node.name][0]]
    return _attr_reader(node.name, cx), t


def _c_pref(node, cx):
    if not cx.route:
        return _no_route(node), None
    cx.reads.add("preference")

    def get(r):
        ch = r.changed
        if "preference" in ch:
            return ch["preference"]
        return r.view.preference

    return get, int


def _c_not(node: ast.Not, cx):
    a, _ = compile_expr(node.a, cx)

    def fn(r):
        v = a(r)
        if v is True:
            return False
        if v is False:
            return True
        raise _err(node, "Not applied to non-boolean")

    return fn, bool


def _c_defined(node: ast.Defined, cx):
    a, t = compile_expr(node.a, cx)
    if isinstance(node.a, ast.StaticAttr) and cx.route:
        # static attributes always exist (BIRD: FI_RTA_GET returns a typed value)
        return (lambda r: True), bool
    return (lambda r: a(r) is not None), bool


def _c_binop(node: ast.BinOp, cx):
    op = node.op
    if op in ("&&", "||"):
        return _c_logic(node, cx)
    a, ta = compile_expr(node.a, cx)
    b, tb = compile_expr(node.b, cx)
    ipv6 = cx.ipv6
    if op in ("+", "-", "*", "/"):
        return _c_arith(node, a, b, op), int
    if op in ("<", "<="):
        return _c_compare(node, a, b, ta, tb, op, ipv6), bool
    if op in ("=", "!="):
        return _c_same(node, a, b, ta, tb, op == "!=", ipv6), bool
    return _c_match(node, a, b, ta, tb, op == "!~", cx), bool


def _c_logic(node, cx):
    a, _ = compile_expr(node.a, cx)
    b, _ = compile_expr(node.b, cx)
    if node.op == "&&":

        def fn(r):
            v = a(r)
            if v is False:
                return False
            if v is not True:
                raise _err(node, "Can't do boolean operation on non-booleans")
            w = b(r)
            if w is True or w is False:
                return w
            raise _err(node, "Can't do boolean operation on non-booleans")

    else:

        def fn(r):
            v = a(r)
            if v is True:
                return True
            if v is not False:
                raise _err(node, "Can't do boolean operation on non-booleans")
            w = b(r)
            if w is True or w is False:
                return w
            raise _err(node, "Can't do boolean operation on non-booleans")

    return fn, bool


def _c_arith(node, a, b, op):
    def fn(r):
        x = a(r)
        y = b(r)
        tx = type(x)
        if tx is not type(y):
            raise _err(node, "Can't operate with values of incompatible types")
        if tx is not int:
            if x is None:
                raise _err(node, "Can't operate with values of type void")
            raise _err(node, "Usage of unknown type")
        if op == "-":
            return (x - y) & U32
        if op == "+":
            return (x + y) & U32
        if op == "*":
            return (x * y) & U32
        if y == 0:
            raise _err(node, "Mother told me not to divide by 0")
        return x // y

    if op == "-":
        # the hot case: 2147483647 - bgp_local_pref
        def fn(r):  # noqa: F811
            x = a(r)
            y = b(r)
            if type(x) is int and type(y) is int:
                return (x - y) & U32
            if type(x) is not type(y):
                raise _err(node, "Can't operate with values of incompatible types")
            if x is None:
                raise _err(node, "Can't operate with values of type void")
            raise _err(node, "Usage of unknown type")

    return fn


def _c_compare(node, a, b, ta, tb, op, ipv6):
    lt = op == "<"
    ka = node.a.value if isinstance(node.a, ast.Const) else _MISS
    kb = node.b.value if isinstance(node.b, ast.Const) else _MISS
    if ta is int and type(kb) is int:
        # attr < K: void is below everything
        if lt:
            return lambda r: (x := a(r)) is None or x < kb
        return lambda r: (x := a(r)) is None or x <= kb
    if type(ka) is int and tb is int:
        # K < attr (``attr > K``): a void attr is never above
        if lt:
            return lambda r: (y := b(r)) is not None and ka < y
        return lambda r: (y := b(r)) is not None and ka <= y
    if ta is int and tb is int:
        # ints that may be void: void sorts below everything
        if lt:

            def fn(r):
                x = a(r)
                y = b(r)
                if x is None:
                    return y is not None
                if y is None:
                    return False
                return x < y

        else:

            def fn(r):
                x = a(r)
                y = b(r)
                if x is None:
                    return True
                if y is None:
                    return False
                return x <= y

        return fn

    def fn(r):  # noqa: F811
        i = val_compare(a(r), b(r), ipv6)
        if i == CMP_ERROR:
            raise _err(node, "Can't compare values of incompatible types")
        return i == -1 if lt else i != 1

    return fn


def _c_same(node, a, b, ta, tb, negate, ipv6):
    simple = (int, Net, str, Ip) + tuple(ENUM.values())
    if ta is not None and ta is tb and ta in simple:
        # same static type, possibly void: Python equality is BIRD's here
        if _is_net(node.a) and isinstance(node.b, ast.Const):
            k = node.b.value
            if negate:
                return lambda r: r.net != k
            return lambda r: r.net == k
        if isinstance(node.b, ast.Const):
            k = node.b.value
            if negate:
                return lambda r: a(r) != k
            return lambda r: a(r) == k
        if negate:
            return lambda r: a(r) != b(r)
        return lambda r: a(r) == b(r)
    if ta is not None and tb is not None and ta is not tb and not _quad_ip(ta, tb, ipv6):
        # different types never compare the same (a void one neither)
        # ... but both sides are still evaluated, for their errors
        def fn(r):
            x = a(r)
            y = b(r)
            if x is None and y is None:
                return negate is False
            return negate

        return fn
    if negate:
        return lambda r: not val_same(a(r), b(r), ipv6)
    return lambda r: val_same(a(r), b(r), ipv6)


def _is_net(node) -> bool:
    return isinstance(node, ast.StaticAttr) and node.name == "net"


def _quad_ip(ta, tb, ipv6) -> bool:
    return not ipv6 and {ta, tb} == {Quad, Ip}


def _c_match(node, a, b, ta, tb, negate, cx):
    ipv6 = cx.ipv6
    bits = cx.bits
    what = "!~" if negate else "~"
    msg = f"{what} applied on unknown type pair"
    bnode = node.b
    if isinstance(bnode, ast.Const):
        k = bnode.value
        if ta is Net and type(k) is Net:
            plen = k[1]
            addr = k[0]
            mask = ((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1)
            if _is_net(node.a):
                if negate:
                    return lambda r: not ((n := r.net)[1] >= plen and n[0] & mask == addr)
                return lambda r: (n := r.net)[1] >= plen and n[0] & mask == addr

            def fn(r):
                n = a(r)
                if type(n) is not Net:
                    v = val_in_range(n, k, ipv6)
                    if v == CMP_ERROR:
                        raise _err(node, msg)
                    return bool(v) is not negate
                return (n[1] >= plen and n[0] & mask == addr) is not negate

            return fn
        if ta is str and type(k) is str:
            rx = pattern_regex(k).match

            def fn(r):  # noqa: F811
                s = a(r)
                if type(s) is not str:
                    v = val_in_range(s, k, ipv6)
                    if v == CMP_ERROR:
                        raise _err(node, msg)
                    return bool(v) is not negate
                return (rx(s) is not None) is not negate

            return fn
        if ta is Net and type(k) is PrefixSet:
            match = k.match

            def fn(r):  # noqa: F811
                n = a(r)
                if type(n) is not Net:
                    v = val_in_range(n, k, ipv6)
                    if v == CMP_ERROR:
                        raise _err(node, msg)
                    return bool(v) is not negate
                return match(n) is not negate

            return fn

    def fn(r):  # noqa: F811
        v = val_in_range(a(r), b(r), ipv6)
        if v == CMP_ERROR:
            raise _err(node, msg)
        return bool(v) is not negate

    return fn


def _c_method(node: ast.Method, cx):
    a, _ = compile_expr(node.a, cx)
    op = node.op
    bits = cx.bits
    if op == "ip":

        def fn(r):
            v = a(r)
            if type(v) is not Net:
                raise _err(node, "Prefix expected")
            return Ip(v[0])

        return fn, Ip
    if op == "len":

        def fn(r):  # noqa: F811
            v = a(r)
            t = type(v)
            if t is Net:
                return v[1]
            if t is Path:
                return path_length(v)
            if t in (CList, EcList, LcList):
                return len(v)
            raise _err(node, "Prefix, path, clist or eclist expected")

        return fn, int
    if op == "mask":
        m, _ = compile_expr(node.arg, cx)

        def fn(r):  # noqa: F811
            v = a(r)
            n = m(r)
            if type(n) is not int:
                raise _err(node, "Integer expected")
            if type(v) is not Ip:
                raise _err(node, "You can mask only IP addresses")
            n = min(n, bits)
            mask = ((1 << bits) - 1) ^ ((1 << (bits - n)) - 1)
            return Ip(v & mask)

        return fn, Ip
    getter = {
        "first": path_first,
        "last": path_last,
        "last_nonaggregated": path_last_nonaggregated,
    }[op]

    def fn(r):  # noqa: F811
        v = a(r)
        if type(v) is not Path:
            raise _err(node, "AS path expected")
        return getter(v)

    return fn, int


def _c_construct(node: ast.Construct, cx):
    fns = [compile_expr(x, cx)[0] for x in node.args]
    ipv6 = cx.ipv6
    if node.kind == "pair":
        fa, fb = fns

        def fn(r):
            x = fa(r)
            y = fb(r)
            if type(x) is not int or type(y) is not int:
                raise _err(node, "Can't operate with value of non-integer type in pair constructor")
            if x > 0xFFFF or y > 0xFFFF:
                raise _err(node, "Can't operate with value out of bounds in pair constructor")
            return Pair((x << 16) | y)

        return fn, Pair
    if node.kind == "lc":
        fa, fb, fc = fns

        def fn(r):  # noqa: F811
            x, y, z = fa(r), fb(r), fc(r)
            if type(x) is not int or type(y) is not int or type(z) is not int:
                raise _err(node, "Can't operate with value of non-integer type in LC constructor")
            return Lc((x, y, z))

        return fn, Lc
    fa, fb = fns
    kind = node.ec_kind

    def fn(r):  # noqa: F811
        key = fa(r)
        val = fb(r)
        if type(key) not in (int, Quad) and not (type(key) is Ip and not ipv6):
            raise _err(node, "Can't operate with key of non-integer/IPv4 type in EC constructor")
        if type(val) is not int:
            raise _err(node, "Can't operate with value of non-integer type in EC constructor")
        ec, bad = make_ec(kind, key, val)
        if bad:
            raise _err(node, "Can't operate with value out of bounds in EC constructor")
        return ec

    return fn, Ec


def _c_pathmask(node: ast.PathMaskExpr, cx):
    parts = []
    for item in node.items:
        if item[0] == "expr":
            parts.append((True, compile_expr(item[1], cx)[0]))
        else:
            parts.append((False, item))

    def fn(r):
        items = []
        for is_expr, x in parts:
            if is_expr:
                v = x(r)
                if type(v) is not int:
                    raise _err(node, "Error resolving path mask template: value not an integer")
                items.append(("asn", v))
            else:
                items.append(x)
        return PathMask(items)

    return fn, PathMask


def _c_empty(node: ast.Empty, cx):
    cls = node.vtype
    empty = cls(())
    return (lambda r: empty), cls


def _c_listop(node: ast.ListOp, cx):
    a, _ = compile_expr(node.a, cx)
    b, _ = compile_expr(node.b, cx)
    op = node.op
    ipv6 = cx.ipv6
    if op == "prepend":

        def fn(r):
            p = a(r)
            n = b(r)
            if type(p) is not Path:
                raise _err(node, "Can't prepend to non-path")
            if type(n) is not int:
                raise _err(node, "Can't prepend non-integer")
            return path_prepend(p, n)

        return fn, Path

    def fn(r):  # noqa: F811
        return _list_op(node, op, a(r), b(r), ipv6)

    return fn, None


def _list_op(node, op: str, v1, v2, ipv6: bool):
    t1, t2 = type(v1), type(v2)
    if t1 is Path:
        if t2 is int:
            key, fset = v2, None
        elif t2 is FSet and v2.type is int:
            key, fset = 0, v2
        else:
            raise _err(node, "Can't delete non-integer (set)")
        if op == "add":
            raise _err(node, "Can't add to path")
        pos = op == "filter"
        if pos and fset is None:
            raise _err(node, "Can't filter integer")

        def keep(asn):
            member = fset.contains(asn) if fset is not None else asn == key
            return member == pos

        segs = []
        for seg_type, asns in v1:
            kept = tuple(x for x in asns if keep(x))
            if kept:
                segs.append((seg_type, kept))
        return Path(segs)
    if t1 is CList:
        if t2 is Pair or t2 is Quad or (not ipv6 and t2 is Ip):
            n, arg_set = int(v2), 0
        elif t2 is FSet and (v2.type is Pair or v2.type is Quad or (not ipv6 and v2.type is Ip)):
            n, arg_set = 0, 1
        elif t2 is CList:
            n, arg_set = 0, 2
        else:
            raise _err(node, "Can't add/delete non-pair")
        if op == "add":
            if arg_set == 1:
                raise _err(node, "Can't add set")
            if not arg_set:
                return v1 if n in v1 else CList((*v1, n))
            return CList((*v1, *(x for x in v2 if x not in v1)))
        if op == "delete":
            if not arg_set:
                return CList(x for x in v1 if x != n)
            return CList(x for x in v1 if not _member(x, v2, v2.type if arg_set == 1 else None))
        if not arg_set:
            raise _err(node, "Can't filter pair")
        return CList(x for x in v1 if _member(x, v2, v2.type if arg_set == 1 else None))
    if t1 is EcList or t1 is LcList:
        elem, name = (Ec, "ec") if t1 is EcList else (Lc, "lc")
        if t2 is FSet and v2.type is elem:
            arg_set = 1
        elif t2 is t1:
            arg_set = 2
        elif t2 is elem:
            arg_set = 0
        else:
            raise _err(node, f"Can't add/delete non-{name}")
        val = int(v2) if t2 is Ec else (tuple(v2) if t2 is Lc else None)
        if op == "add":
            if arg_set == 1:
                raise _err(node, "Can't add set")
            if not arg_set:
                return v1 if val in v1 else t1((*v1, val))
            return t1((*v1, *(x for x in v2 if x not in v1)))
        if op == "delete":
            if not arg_set:
                return t1(x for x in v1 if x != val)
            return t1(x for x in v1 if not _member(x, v2, elem if arg_set == 1 else None))
        if not arg_set:
            raise _err(node, f"Can't filter {name}")
        return t1(x for x in v1 if _member(x, v2, elem if arg_set == 1 else None))
    raise _err(node, "Can't add/delete to non-[e|l]clist")


def _member(x, container, elem) -> bool:
    if elem is None:  # a list
        return x in container
    if elem is Ip:
        elem = Ip
    return container.contains(elem(x))


def _c_call(node: ast.Call, cx):
    """A function call as a term: its value is what ``return`` gave (or BIRD's leftover
    value of the last instruction); accept/reject inside end the whole filter."""
    assign = _param_assigner(node, cx)
    body = _function_body(node.func, cx, value=True)

    def fn(r):
        assign(r)
        code, value = body(r)
        if code is None or code == RETURN:
            return value
        raise _Stop(code)

    return fn, None


def _param_assigner(node: ast.Call, cx):
    args = [compile_expr(x, cx)[0] for x in node.args]
    params = [(p, _cell(p)) for p in node.func.params]
    pairs = list(zip(params, args, strict=True))
    ipv6 = cx.ipv6

    def assign(r):
        for (sym, cell), arg in pairs:
            cell[0] = _assign_value(node, sym, arg(r), ipv6)

    return assign


def _assign_value(node, sym, v, ipv6):
    """BIRD's FI_SET type check: the variable's type or void (an IP into a quad in IPv4)."""
    if v is None or type(v) is sym.vtype:
        return v
    if sym.vtype is FSet and type(v) is FSet:
        return v
    if not ipv6 and sym.vtype is Quad and type(v) is Ip:
        return Quad(v)
    raise _err(node, "Assigning to variable of incompatible type")


def _function_body(func: ast.Function, cx, value: bool):
    """The compiled body of ``func``; a call inside its own body does nothing (BIRD binds the
    call to the function's body before the body exists)."""
    # compiled once per program (what a body reads decides how its caller's runs start)
    key = (id(func), value)
    cache = cx.functions
    if key in cache:
        return cache[key]
    if func.body is None:
        return (lambda r: (None, None)) if value else (lambda r: None)
    # guard against the body calling us before we finish compiling
    cache[key] = (lambda r: (None, None)) if value else (lambda r: None)
    locals_ = [_cell(s) for s in func.locals]
    if value:
        stmts = [_compile_stmt_value(s, cx) for s in func.body]

        def body(r):
            for c in locals_:
                c[0] = None
            last = None
            for s in stmts:
                code, last = s(r)
                if code is not None:
                    if code == RETURN:
                        return RETURN, r.retval
                    return code, None
            return None, last

    else:
        block = _compile_block(func.body, cx)

        if locals_:

            def body(r):
                for c in locals_:
                    c[0] = None
                return block(r)

        else:
            body = block
    cache[key] = body
    return body


def _compile_stmt_value(node, cx):
    """A top-level statement of a function whose value is used: ``(code, value)``, the value
    BIRD's interpreter leaves: an ``if`` gives a bool (``if C then`` gives ``not C``,
    ``if C then ... else ...`` gives ``C``), a call its value, the rest void."""
    if isinstance(node, ast.If):
        cond, _ = compile_expr(node.cond, cx)
        then = _compile_block(node.then, cx)
        else_ = _compile_block(node.else_, cx) if node.else_ is not None else None

        def fn(r):
            c = cond(r)
            if c is not True and c is not False:
                raise _err(node, "If requires boolean expression")
            if c:
                code = then(r)
                return code, else_ is not None
            if else_ is not None:
                return else_(r), False
            return None, True

        return fn
    if isinstance(node, ast.CallStmt):
        call, _ = _c_call(node.call, cx)

        def fn(r):  # noqa: F811
            return None, call(r)

        return fn
    stmt = compile_stmt(node, cx)

    def fn(r):  # noqa: F811
        return stmt(r), None

    return fn


_EXPR = {
    ast.Const: _c_const,
    ast.Var: _c_var,
    ast.StaticAttr: _c_static,
    ast.DynAttr: _c_dyn,
    ast.Pref: _c_pref,
    ast.Not: _c_not,
    ast.Defined: _c_defined,
    ast.BinOp: _c_binop,
    ast.Method: _c_method,
    ast.Construct: _c_construct,
    ast.PathMaskExpr: _c_pathmask,
    ast.Call: _c_call,
    ast.Empty: _c_empty,
    ast.ListOp: _c_listop,
}


# --- statements -------------------------------------------------------------------------------


def compile_stmt(node, cx):
    return _STMT[type(node)](node, cx)


def _compile_block(stmts: list, cx):
    fns = []
    guards: list = []
    for s in stmts:
        code = _constant_code(s.then) if isinstance(s, ast.If) and s.else_ is None else None
        if code is not None:
            # ``if C then accept;`` runs: one closure tries them in order (calico_aggr)
            guards.append((compile_expr(s.cond, cx)[0], code, s))
            continue
        if guards:
            fns.append(_guard_chain(guards))
            guards = []
        fns.append(compile_stmt(s, cx))
    if guards:
        fns.append(_guard_chain(guards))
    if not fns:
        return lambda r: None
    if len(fns) == 1:
        return fns[0]
    if len(fns) == 2:
        f1, f2 = fns

        def block2(r):
            c = f1(r)
            if c is not None:
                return c
            return f2(r)

        return block2
    fns = tuple(fns)

    def block(r):
        for f in fns:
            c = f(r)
            if c is not None:
                return c
        return None

    return block


def _guard_chain(guards: list):
    """Consecutive ``if C then accept;`` / ``reject;`` statements as one closure."""
    if len(guards) == 1:
        cond, code, node = guards[0]

        def guard(r):
            c = cond(r)
            if c is True:
                return code
            if c is not False:
                raise _err(node, "If requires boolean expression")
            return None

        return guard
    items = tuple(guards)

    def chain(r):
        for cond, code, node in items:
            c = cond(r)
            if c is True:
                return code
            if c is not False:
                raise _err(node, "If requires boolean expression")
        return None

    return chain


def _s_if(node: ast.If, cx):
    cond, _ = compile_expr(node.cond, cx)
    then = _compile_block(node.then, cx)
    if node.else_ is None:
        code = _constant_code(node.then)
        if code is not None:
            # ``if C then accept;`` (Calico's aggregation and pool rules)

            def if_code(r):
                c = cond(r)
                if c is True:
                    return code
                if c is False:
                    return None
                raise _err(node, "If requires boolean expression")

            return if_code

        def fn(r):
            c = cond(r)
            if c is True:
                return then(r)
            if c is False:
                return None
            raise _err(node, "If requires boolean expression")

        return fn
    else_ = _compile_block(node.else_, cx)

    def fn(r):  # noqa: F811
        c = cond(r)
        if c is True:
            return then(r)
        if c is False:
            return else_(r)
        raise _err(node, "If requires boolean expression")

    return fn


def _constant_code(stmts: list):
    """The outcome of a block that is just ``accept;``/``reject;``, else None."""
    if len(stmts) == 1 and isinstance(stmts[0], ast.Die) and not stmts[0].prints:
        return {"accept": ACCEPT, "reject": REJECT, "error": ERROR}.get(stmts[0].kind)
    return None


def _s_setvar(node: ast.SetVar, cx):
    value, _ = compile_expr(node.value, cx)
    sym = node.sym
    cell = _cell(sym)
    ipv6 = cx.ipv6

    def fn(r):
        cell[0] = _assign_value(node, sym, value(r), ipv6)

    return fn


def _s_setdyn(node: ast.SetDyn, cx):
    name = node.name
    kind, field = DYN_ATTRS[name]
    if node.value is None:  # unset()
        if not cx.route:
            return _no_route(node)
        # An export filter (FF_FORCE_TMPATTR) keeps the unset in the temporary list, where a
        # later read skips it and finds the route's own value; an import filter removes it.
        gone = _UNSET if cx.export else None

        def unset(r):
            r.changed[name] = gone

        return unset
    value, _ = compile_expr(node.value, cx)
    if not cx.route:
        nr = _no_route(node)

        def fn(r):
            value(r)
            nr(r)

        return fn
    ipv6 = cx.ipv6
    if kind == INT:

        def fn(r):  # noqa: F811
            v = value(r)
            if type(v) is not int:
                if not isinstance(v, Enum):
                    raise _err(node, "Setting int attribute to non-int value")
                v = int(v)
            r.changed[name] = v

        return fn
    if kind == BITFIELD:

        def fn(r):  # noqa: F811
            v = value(r)
            if type(v) is not bool:
                raise _err(node, "Setting bit in bitfield attribute to non-bool value")
            r.changed[name] = v

        return fn

    check = _SET_CHECK[kind]

    def fn(r):  # noqa: F811
        r.changed[name] = check(node, value(r), ipv6)

    return fn


def _chk_type(cls, message):
    def check(node, v, ipv6):
        if type(v) is not cls:
            raise _err(node, message)
        return v

    return check


def _chk_quad(node, v, ipv6):
    if not ipv6 and type(v) is Ip:
        return Quad(v)
    if type(v) is not Quad and type(v) is not int:
        raise _err(node, "Setting quad attribute to non-quad value")
    return Quad(v)


def _chk_opaque(node, v, ipv6):
    raise _err(node, "Setting opaque attribute is not allowed")


_SET_CHECK = {
    STRING: _chk_type(str, "Setting string attribute to non-string value"),
    QUAD_: _chk_quad,
    OPAQUE: _chk_opaque,
    IPADDR: _chk_type(Ip, "Setting ip attribute to non-ip value"),
    ASPATH: _chk_type(Path, "Setting path attribute to non-path value"),
    INTSET: _chk_type(CList, "Setting clist attribute to non-clist value"),
    ECSET: _chk_type(EcList, "Setting eclist attribute to non-eclist value"),
    LCSET: _chk_type(LcList, "Setting lclist attribute to non-lclist value"),
}


def _s_setstatic(node: ast.SetStatic, cx):
    value, _ = compile_expr(node.value, cx)
    name = node.name
    expect = {"from": Ip, "gw": Ip, "scope": Scope, "dest": Rtd, "ifname": str}[name]
    route = cx.route

    def fn(r):
        v = value(r)
        if not route:
            raise _err(node, "No route to access")
        if type(v) is not expect:
            raise _err(node, "Attempt to set static attribute to incompatible type")
        if name == "dest" and int(v) not in (2, 3, 4):
            raise _err(
                node, "Destination can be changed only to blackhole, unreachable or prohibit"
            )
        if r.statics is None:
            r.statics = {}
        r.statics[name] = v

    return fn


def _s_setpref(node: ast.SetPref, cx):
    value, _ = compile_expr(node.value, cx)
    route = cx.route

    def fn(r):
        if not route:
            raise _err(node, "No route to access")
        v = value(r)
        if type(v) is not int:
            raise _err(node, "Can't set preference to non-integer")
        if v > 0xFFFF:
            raise _err(node, "Setting preference value out of bounds")
        r.changed["preference"] = v

    return fn


def _s_return(node: ast.Return, cx):
    value, _ = compile_expr(node.value, cx)

    def fn(r):
        r.retval = value(r)
        return RETURN

    return fn


def _s_die(node: ast.Die, cx):
    prints = [compile_expr(p, cx)[0] for p in node.prints]
    code = {"accept": ACCEPT, "reject": REJECT, "error": ERROR}.get(node.kind)
    if prints or node.kind in ("print", "printn", "quitbird"):
        cx.prints = True
    kind = node.kind
    where = f"{node.file}:{node.line}"
    ipv6 = cx.ipv6

    if not prints and code is not None:
        return lambda r: code

    def fn(r):
        text = "".join(format_value(p(r), ipv6) for p in prints)
        if kind == "print" or (kind != "printn" and prints):
            log.info("%s", text)
        if kind == "quitbird":
            # BIRD dies here; a daemon serving other routes must not: log and reject
            log.error("%s: filter asked to quit (quitbird); the route is rejected", where)
            return ERROR
        return code

    return fn


def _s_call(node: ast.CallStmt, cx):
    assign = _param_assigner(node.call, cx)
    body = _function_body(node.call.func, cx, value=False)

    def fn(r):
        assign(r)
        code = body(r)
        if code == RETURN:
            return None
        return code

    return fn


def _s_case(node: ast.Case, cx):
    value, _ = compile_expr(node.value, cx)
    arms = [(s, _compile_block(body, cx)) for s, body in node.arms]
    default = next((b for s, b in arms if s is None), None)
    ipv6 = cx.ipv6

    def fn(r):
        v = value(r)
        for s, body in arms:
            if s is not None and val_in_range(v, s, ipv6) == 1:
                return body(r)
        if default is not None:
            return default(r)
        return None

    return fn


_STMT = {
    ast.If: _s_if,
    ast.SetVar: _s_setvar,
    ast.SetDyn: _s_setdyn,
    ast.SetStatic: _s_setstatic,
    ast.SetPref: _s_setpref,
    ast.Return: _s_return,
    ast.Die: _s_die,
    ast.CallStmt: _s_call,
    ast.Case: _s_case,
}


def format_value(v, ipv6: bool = False) -> str:
    """A value as BIRD's ``val_format`` prints it (for ``print``)."""
    t = type(v)
    if v is None:
        return "(void)"
    if t is bool:
        return "TRUE" if v else "FALSE"
    if t is int:
        return str(v)
    if t is str:
        return v
    if t is Ip:
        return _ip_text(v, ipv6)
    if t is Net:
        return f"{_ip_text(v[0], ipv6)}/{v[1]}"
    if t is Pair:
        return f"({v >> 16},{v & 0xFFFF})"
    if t is Quad:
        return _ip_text(v, False)
    if t is Lc:
        return f"({v[0]}, {v[1]}, {v[2]})"
    if t is Path:
        return (
            "(path "
            + " ".join(
                "{" + " ".join(map(str, a)) + "}" if st == 1 else " ".join(map(str, a))
                for st, a in v
            )
            + ")"
        )
    if t is CList:
        return "(clist " + " ".join(f"({c >> 16},{c & 0xFFFF})" for c in v) + ")"
    if t is LcList:
        return "(lclist " + " ".join(f"({a}, {b}, {c})" for a, b, c in v) + ")"
    if isinstance(v, Enum):
        return f"(enum {v.code:x}){int(v)}"
    return repr(v)


def _ip_text(v: int, ipv6: bool) -> str:
    import ipaddress

    return str(ipaddress.IPv6Address(int(v)) if ipv6 else ipaddress.IPv4Address(int(v)))


# --- programs ---------------------------------------------------------------------------------


# what a changed attribute becomes in the AttrSet
def _to_attrset(name: str, v, ipv6: bool):
    kind, field = DYN_ATTRS[name]
    if v is _UNSET:
        v = None
    if kind == INT:
        return v
    if kind == ASPATH:
        return None if v is None else tuple(v)
    if kind == IPADDR:
        return None if v is None else int(v).to_bytes(16 if ipv6 else 4, "big")
    if kind == INTSET:
        if field == "cluster_list":
            return tuple(int(x).to_bytes(4, "big") for x in (v or ()))
        return tuple(v or ())
    if kind == QUAD_:
        return None if v is None else int(v).to_bytes(4, "big")
    if kind == ECSET:
        return tuple(int(x).to_bytes(8, "big") for x in (v or ()))
    if kind == LCSET:
        return tuple(tuple(x) for x in (v or ()))
    if kind == OPAQUE:
        return None if field == "aggregator" else False
    raise AssertionError(name)


class Program:
    """A compiled filter: :meth:`run` it on a :class:`RouteView`.

    ``attr_only`` is true when the verdict depends on the AttrSet alone (the filter reads no
    ``net``, ``source``, ``ifname``, ``krt_metric``, ``preference``... and prints nothing):
    :meth:`run` then remembers results in the set's cache, keyed by this program's ``uid``.
    """

    def __init__(self, filterdef, ipv6: bool, export: bool = True) -> None:
        self.name = filterdef.name or "(unnamed)"
        self.filterdef = filterdef
        self.ipv6 = ipv6
        self.export = export
        self.uid = next(_uid)
        cx = _Ctx(ipv6, export=export)
        body = _compile_block(filterdef.body, cx)
        cells = [_cell(s) for s in filterdef.locals]
        if cells:
            inner = body

            def body(r):
                for c in cells:
                    c[0] = None
                return inner(r)

        self._body = body
        self.reads = frozenset(cx.reads)
        self._reads_net = "net" in cx.reads
        # where AttrSet has a preference field, an import filter's preference goes there
        self._pref_on_set = not export and "preference" in _ATTRSET_FIELDS
        self.attr_only = not cx.reads and not cx.prints
        self._run = _Run()
        self._run.ipv6 = ipv6
        self._key = ("bird", self.uid)

    def __repr__(self) -> str:
        return f"Program({self.name!r}{', attr-only' if self.attr_only else ''})"

    def run(self, view: RouteView) -> Verdict:
        """The verdict for ``view``; never raises (a runtime error rejects the route)."""
        if self.attr_only:
            attrs = view.attrs
            cache = attrs.cache
            hit = cache.get(self._key, _MISS)
            if hit is _MISS:
                hit = self._execute(view)
                cache[self._key] = hit
            code, new_attrs, temps, statics, error = hit
            if new_attrs is SAME:
                new_attrs = attrs
        else:
            code, new_attrs, temps, statics, error = self._execute(view)
            if new_attrs is SAME:
                new_attrs = view.attrs
        if code == ACCEPT:
            get = temps.get if temps else None
            return Verdict(
                True,
                new_attrs,
                get("krt_metric", view.krt_metric) if get else view.krt_metric,
                get("krt_tunnel", view.krt_tunnel) if get else view.krt_tunnel,
                get("preference", view.preference) if get else view.preference,
                temps,
                statics,
                None,
            )
        return Verdict(
            False,
            view.attrs,
            view.krt_metric,
            view.krt_tunnel,
            view.preference,
            None,
            None,
            error,
        )

    def _execute(self, view: RouteView) -> tuple:
        """``(code, attrs | SAME, temps, statics, error)`` for one run."""
        r = self._run
        r.view = view
        attrs = r.attrs = view.attrs
        r.changed = changed = {}
        r.net = _net_of(view, self.ipv6) if self._reads_net else None
        r.statics = None
        error = None
        try:
            code = self._body(r)
        except _Stop as s:
            code = s.code
        except FilterRuntimeError as e:
            code = ERROR
            error = f"{e.file}:{e.line}: {e.message}"
            log.error("filter %s, %s", self.name, error)
        except RecursionError:
            code = ERROR
            error = f"{self.filterdef.file}:{self.filterdef.line}: filter nesting too deep"
            log.error("filter %s: %s", self.name, error)
        finally:
            r.view = r.attrs = None
        if code == RETURN or code is None:
            if error is None:
                error = (
                    f"{self.filterdef.file}:{self.filterdef.line}: Filter {self.name} did not "
                    "return accept nor reject. Make up your mind"
                )
                log.error("%s", error)
            code = ERROR
        if code != ACCEPT:
            return code, SAME, None, None, error
        if not changed:
            return code, SAME, None, r.statics, None
        fields = {}
        temps = {}
        ipv6 = self.ipv6
        for name, v in changed.items():
            if name == "preference":
                temps[name] = v
                if self._pref_on_set and getattr(attrs, "preference", None) != v:
                    fields["preference"] = v  # an import filter's: kept on the route's set
                continue
            field = DYN_ATTRS[name][1]
            if field is None:
                temps[name] = None if v is _UNSET else v
                continue
            new = _to_attrset(name, v, ipv6)
            if getattr(attrs, field) != new:
                fields[field] = new
        if fields:
            key = ("bird-set", *sorted(fields.items()))
            cache = attrs.cache
            new_attrs = cache.get(key)
            if new_attrs is None:
                new_attrs = attrs.replace(**fields)
                if len(cache) < 256:
                    cache[key] = new_attrs
        else:
            new_attrs = SAME
        return code, new_attrs, temps or None, r.statics, None


def evaluate_constant(term, ipv6: bool):
    """A term evaluated without a route (BIRD's ``f_eval``), at config time."""
    cx = _Ctx(ipv6, route=False)
    fn, _ = compile_expr(term, cx)
    r = _Run()
    r.ipv6 = ipv6
    try:
        return fn(r)
    except _Stop:
        raise FilterRuntimeError(term.file, term.line, "Runtime error") from None


def compile_filter(filterdef, ipv6: bool, export: bool = True) -> Program:
    """The :class:`Program` of a FilterDef for one family and direction (compiled once and
    kept on it). ``export``: an export filter (to BGP, to the kernel; also ``show route
    filter``); False: an import filter. They differ only in what ``unset()`` does."""
    cache = filterdef.compiled
    if cache is None:
        cache = filterdef.compiled = {}
    key = (ipv6, export)
    prog = cache.get(key)
    if prog is None:
        prog = cache[key] = Program(filterdef, ipv6, export)
    return prog

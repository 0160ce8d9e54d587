"""A recursive-descent parser for the BIRD 1.6 configuration language (the part bgpd runs).

It follows BIRD's grammar (conf/confbase.Y, nest/config.Y, filter/config.Y,
sysdep/unix/{config,krt}.Y, sysdep/linux/netlink.Y, proto/{bgp,static}/config.Y) and its
semantic checks, and reports every error where BIRD's LALR parser would: a syntax error at the
token that cannot continue the input, a check made when a rule is reduced at the last token
read (the rule's last token, or the look-ahead token when the grammar needs one to decide).
The parser therefore reads a look-ahead token only where BIRD's does.

Statements and protocol options BIRD has but bgpd cannot run (other protocols, ROA tables,
``roa_check``...) are refused with a message saying so, at the token that starts them.
"""

import ipaddress

from . import ast, model
from . import lexer as lx
from .errors import BirdError, FilterRuntimeError
from .lexer import ELSECOL, END, ENUM, IPA, NUM, RTRID, SYM, TEXT, Lexer
from .values import (
    ENUM as ENUM_TYPES,
)
from .values import (
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
)

# symbol classes (conf/conf.h SYM_*)
VOID = "undefined"
FUNCTION = "function"
FILTER = "filter"
PROTO = "protocol"
TEMPLATE = "protocol template"
TABLE = "routing table"
CONSTANT = "constant"
VARIABLE = "variable"

# the filter's static attributes: name -> (Python type, writable)
STATIC_ATTRS = {
    "FROM": ("from", True),
    "GW": ("gw", True),
    "NET": ("net", False),
    "PROTO": ("proto", False),
    "SOURCE": ("source", False),
    "SCOPE": ("scope", True),
    "CAST": ("cast", False),
    "DEST": ("dest", True),
    "IFNAME": ("ifname", True),
    "IFINDEX": ("ifindex", False),
}

# dynamic attributes (keyword -> attribute name); their types are in program.DYN_ATTRS
DYN_ATTR_KEYWORDS = frozenset(
    k.upper()
    for k in [
        "bgp_origin",
        "bgp_path",
        "bgp_next_hop",
        "bgp_med",
        "bgp_local_pref",
        "bgp_atomic_aggr",
        "bgp_aggregator",
        "bgp_community",
        "bgp_originator_id",
        "bgp_cluster_list",
        "bgp_ext_community",
        "bgp_large_community",
        "krt_source",
        "krt_metric",
        "krt_prefsrc",
        "krt_realm",
        "krt_scope",
        "krt_tunnel",
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
        "ospf_metric1",
        "ospf_metric2",
        "ospf_tag",
        "ospf_router_id",
        "rip_metric",
        "rip_tag",
        "babel_metric",
        "ra_preference",
        "ra_lifetime",
    ]
)

TYPE_KEYWORDS = {
    "INT": int,
    "BOOL": bool,
    "IP": Ip,
    "PREFIX": Net,
    "PAIR": Pair,
    "QUAD": Quad,
    "EC": Ec,
    "LC": Lc,
    "STRING": str,
    "BGPMASK": PathMask,
    "BGPPATH": Path,
    "CLIST": CList,
    "ECLIST": EcList,
    "LCLIST": LcList,
}
SET_OF = {int: FSet, Pair: FSet, Quad: FSet, Ec: FSet, Lc: FSet, Ip: FSet, Net: PrefixSet}

BREAK_COMMANDS = {
    "QUITBIRD": "quitbird",
    "ACCEPT": "accept",
    "REJECT": "reject",
    "ERROR": "error",
    "PRINT": "print",
    "PRINTN": "printn",
}

UNSUPPORTED_PROTOCOLS = {
    "OSPF": "ospf",
    "RIP": "rip",
    "PIPE": "pipe",
    "RADV": "radv",
    "BABEL": "babel",
    "MRT": "mrt",
}

EC_KINDS = {"RT": 2, "RO": 3, "GENERIC": 0x8000}  # EC_RT, EC_RO, EC_GENERIC


class Const:
    """An option's value that no token gives (``rr client;``: True)."""

    __slots__ = ("value",)

    def __init__(self, value) -> None:
        self.value = value


ON = Const(True)


def _options(table: dict) -> dict:
    """Protocol options that are a fixed run of keywords and then one value, as a trie for
    :meth:`Parser.option`: keyword -> what may follow it. A leaf is ``(field, read)``: the
    model field set (None: none) and the Parser method that reads the value (or a
    :class:`Const`). Where one option's keywords begin another's (``graceful restart`` and
    ``graceful restart aware``), the shorter is the node's ``None`` entry: what it means
    when the next token continues none of the longer ones."""
    trie: dict = {}
    for words, leaf in table.items():
        node = trie
        *path, last = words.split()
        for w in path:
            nxt = node.setdefault(w, {})
            if type(nxt) is not dict:
                nxt = node[w] = {None: nxt}
            node = nxt
        if type(node.get(last)) is dict:
            node[last][None] = leaf
        else:
            node[last] = leaf
    return trie


# nest/config.Y: the options of every protocol (the others: Parser.proto_item)
PROTO_OPTIONS = _options(
    {
        "DISABLED": ("disabled", "bool"),
        "DEBUG": ("debug", "debug_mask"),
        "MRTDUMP": (None, "mrtdump_mask"),
        "IMPORT LIMIT": ("import_limit", "limit_spec"),
        "IMPORT KEEP FILTERED": ("import_keep_filtered", "bool"),
        "IMPORT": ("import_filter", "imexport"),
        "EXPORT LIMIT": ("export_limit", "limit_spec"),
        "EXPORT": ("export_filter", "imexport"),
        "RECEIVE LIMIT": ("receive_limit", "limit_spec"),
        "VRF DEFAULT": ("vrf", Const(None)),
        "VRF": ("vrf", "text"),
        "TABLE": ("table", "table_ref"),
        "ROUTER ID": ("router_id", "idval"),
        "DESCRIPTION": ("description", "text"),
    }
)

# proto/bgp/config.Y (the others: Parser.item_bgp)
BGP_OPTIONS = _options(
    {
        "INTERFACE": ("neighbor_interface", "text_literal"),
        "RR CLUSTER ID": ("rr_cluster_id", "idval"),
        "RR CLIENT": ("rr_client", ON),
        "RS CLIENT": ("rs_client", ON),
        "HOLD TIME": ("hold_time", "expr"),
        "STARTUP HOLD TIME": ("startup_hold_time", "expr"),
        "DIRECT": ("multihop", Const(0)),
        "PATH METRIC": ("path_metric", "bool"),
        "MED METRIC": ("med_metric", "bool"),
        "IGP TABLE": ("igp_table", "table_ref"),
        "IGP METRIC": ("igp_metric", "bool"),
        "PREFER OLDER": ("prefer_older", "bool"),
        "DETERMINISTIC MED": ("deterministic_med", "bool"),
        "DEFAULT BGP_MED": ("default_med", "expr"),
        "DEFAULT BGP_LOCAL_PREF": ("default_local_pref", "expr"),
        "SOURCE ADDRESS": ("local_address", "ipa"),
        "START DELAY TIME": ("connect_delay_time", "expr"),
        "CONNECT DELAY TIME": ("connect_delay_time", "expr"),
        "CONNECT RETRY TIME": ("connect_retry_time", "expr"),
        "KEEPALIVE TIME": ("keepalive_time", "expr"),
        "ERROR FORGET TIME": ("error_forget_time", "expr"),
        "ERROR WAIT TIME": ("error_wait_time", "expr_pair"),
        "DISABLE AFTER ERROR": ("disable_after_error", "bool"),
        "DISABLE AFTER CEASE": (None, "cease_flags"),
        "ENABLE ROUTE REFRESH": ("enable_route_refresh", "bool"),
        "ENABLE AS4": ("enable_as4", "bool"),
        "ENABLE EXTENDED MESSAGES": ("enable_extended_messages", "bool"),
        "CAPABILITIES": ("capabilities", "bool"),
        "ADVERTISE IPV4": ("advertise_ipv4", "bool"),
        "PASSWORD": ("password", "text"),
        "SETKEY": ("setkey", "bool"),
        "ROUTE LIMIT": ("import_limit", "route_limit"),
        "PASSIVE": ("passive", "bool"),
        "INTERPRET COMMUNITIES": ("interpret_communities", "bool"),
        "SECONDARY": ("secondary", "bool"),
        "ADD PATHS RX": ("add_paths", Const("rx")),
        "ADD PATHS TX": ("add_paths", Const("tx")),
        "ADD PATHS": ("add_paths", "add_paths_bool"),
        "ALLOW BGP_LOCAL_PREF": ("allow_local_pref", "bool"),
        "ALLOW LOCAL AS": ("allow_local_as", "allow_local_as"),
        "GRACEFUL RESTART AWARE": ("graceful_restart", Const("aware")),
        "GRACEFUL RESTART TIME": ("graceful_restart_time", "expr"),
        "GRACEFUL RESTART": ("graceful_restart", "bool"),
        "LONG LIVED STALE TIME": ("llgr_time", "expr"),
        "LONG LIVED GRACEFUL RESTART AWARE": ("llgr", Const("aware")),
        "LONG LIVED GRACEFUL RESTART": ("llgr", "bool"),
        "TTL SECURITY": ("ttl_security", "bool"),
        "CHECK LINK": ("check_link", "bool"),
        "BFD": ("bfd", "bool"),
    }
)

# sysdep/unix/krt.Y, sysdep/linux/netlink.Y (merge paths: Parser.item_kernel)
KERNEL_OPTIONS = _options(
    {
        "PERSIST": ("persist", "bool"),
        "SCAN TIME": ("scan_time", "expr"),
        "LEARN": ("learn", "bool"),
        "DEVICE ROUTES": ("device_routes", "bool"),
        "GRACEFUL RESTART": ("graceful_restart", "bool"),
        "KERNEL TABLE": ("kernel_table", "expr"),
        "METRIC": ("metric", "expr"),
    }
)

DEVICE_OPTIONS = _options({"SCAN TIME": ("scan_time", "expr")})
DIRECT_OPTIONS = _options({"CHECK LINK": ("check_link", "bool")})
STATIC_OPTIONS = _options(
    {"CHECK LINK": ("check_link", "bool"), "IGP TABLE": ("igp_table", "table_ref")}
)


class Scope:
    __slots__ = ("active", "up")

    def __init__(self, up: "Scope | None") -> None:
        self.active = True
        self.up = up


class Symbol:
    """A name: protocol, template, function, filter, constant, variable, table."""

    __slots__ = ("name", "cls", "scope", "value", "vtype", "slot")

    def __init__(self, name: str, scope: Scope) -> None:
        self.name = name
        self.cls = VOID
        self.scope = scope
        self.value = None
        self.vtype = None  # type of a variable or constant
        self.slot = None  # a variable's storage index (set by the compiler)

    def __repr__(self) -> str:
        return f"Symbol({self.name!r}, {self.cls})"


class Parser:
    def __init__(self, path: str, ipv6: bool = False, fork: bool = True) -> None:
        self.lexer = Lexer(path, ipv6, fork)
        self.ipv6 = ipv6
        self.bits = 128 if ipv6 else 32
        self.tok: lx.Token | None = None  # the look-ahead, when read
        self.last: lx.Token | None = None  # the last token the lexer produced
        self.prev: lx.Token | None = None  # the last token consumed
        self.symbols: dict[str, list[Symbol]] = {}
        self.scope = Scope(None)
        self.config = model.BirdConfig(path, ipv6)
        self.name_counters: dict[str, int] = {}
        self.device_defined = False
        self.kernel_tables: dict[str, str] = {}

    # --- tokens ------------------------------------------------------------------------------

    def peek(self) -> lx.Token:
        if self.tok is None:
            self.tok = self.lexer.next()
            self.last = self.tok
        return self.tok

    def take(self) -> lx.Token:
        t = self.peek()
        self.tok = None
        self.prev = t
        return t

    def at(self, *kinds: str) -> bool:
        return self.peek().kind in kinds

    def accept(self, kind: str) -> "lx.Token | None":
        if self.peek().kind == kind:
            return self.take()
        return None

    def expect(self, kind: str) -> lx.Token:
        if self.peek().kind != kind:
            raise self.syntax()
        return self.take()

    def option(self, p, trie: dict) -> bool:
        """One option of ``trie`` (see :func:`_options`) into ``p``; False when the next token
        starts none (nothing read). A token that continues none of the options begun is a
        syntax error there, as in BIRD's grammar."""
        node = trie.get(self.peek().kind)
        if node is None:
            return False
        self.take()
        while type(node) is dict:
            nxt = node.get(self.peek().kind)
            if nxt is not None:
                self.take()
                node = nxt
            elif None in node:
                node = node[None]
            else:
                raise self.syntax()
        field, read = node
        value = read.value if type(read) is Const else getattr(self, read)()
        if field is not None:
            setattr(p, field, value)
        return True

    def error(self, message: str) -> BirdError:
        """``cf_error``: at the last token read (look-ahead or not)."""
        t = self.last
        return BirdError(t.file, t.line, t.col, message)

    def syntax(self) -> BirdError:
        self.peek()
        return self.error("syntax error")

    def unsupported(self, what: str) -> BirdError:
        return self.error(f"{what} is not supported by bgpd")

    def here(self) -> tuple[str, int]:
        """The file and line a filter instruction records (the lexer's current line)."""
        t = self.last
        return t.file, t.line

    # --- symbols -----------------------------------------------------------------------------

    def find(self, name: str) -> Symbol | None:
        for s in self.symbols.get(name, ()):
            if s.scope.active:
                return s
        return None

    def get_symbol(self, name: str) -> Symbol:
        s = self.find(name)
        if s is None:
            s = Symbol(name, self.scope)
            self.symbols.setdefault(name, []).insert(0, s)
        return s

    def define(self, sym: Symbol, cls: str, value=None) -> Symbol:
        if sym.cls != VOID:
            if sym.scope is self.scope:
                raise self.error("Symbol already defined")
            sym = Symbol(sym.name, self.scope)
            self.symbols.setdefault(sym.name, []).insert(0, sym)
        sym.cls = cls
        sym.value = value
        return sym

    def push_scope(self) -> None:
        self.scope = Scope(self.scope)

    def pop_scope(self) -> None:
        self.scope.active = False
        self.scope = self.scope.up

    def default_name(self, template: str) -> str:
        n = self.name_counters.get(template, 0)
        while True:
            n += 1
            name = f"{template}{n}"
            s = self.get_symbol(name)
            if s.cls == VOID:
                self.name_counters[template] = n
                return name

    # --- the file ----------------------------------------------------------------------------

    def parse(self) -> model.BirdConfig:
        while True:
            t = self.peek()
            k = t.kind
            if k == END:
                break
            handler = self.TOP.get(k)
            if handler is None:
                raise self.syntax()
            handler(self)
        self.postconfig()
        self.config.files = list(self.lexer.files)
        return self.config

    def postconfig(self) -> None:
        cfg = self.config
        for p in cfg.protocols:
            if p.kind == "kernel":
                other = self.kernel_tables.get(p.table)
                if other is not None:
                    raise self.error(f"Kernel syncer ({other}) already attached to table {p.table}")
                self.kernel_tables[p.table] = p.name
        if not cfg.protocols:
            raise self.error("No protocol is specified in the config file")
        if self.ipv6 and cfg.router_id is None:
            raise self.error("Router ID must be configured manually on IPv6 routers")

    def p_semicolon(self) -> None:
        self.take()

    def p_define(self) -> None:
        self.take()
        sym = self.get_symbol(self.expect(SYM).value)
        self.expect("=")
        term = self.term()
        self.expect(";")
        try:
            value = self.evaluate(term)
        except FilterRuntimeError:
            raise self.error("Runtime error")
        sym = self.define(sym, CONSTANT, value)
        sym.vtype = type(value)
        self.config.constants[sym.name] = value

    def p_eval(self) -> None:
        self.take()
        term = self.term()
        self.eval_int(term)

    def p_router(self) -> None:
        self.take()
        self.expect("ID")
        if self.accept("FROM"):
            self.config.router_id_from = self.iface_patt_list()
            self.expect(";")
            return
        self.config.router_id = self.idval()
        self.expect(";")

    def p_listen(self) -> None:
        self.take()
        self.expect("BGP")
        cfg = self.config
        while True:
            if self.accept("ADDRESS"):
                cfg.listen_address = self.ipa()
            elif self.accept("PORT"):
                cfg.listen_port = self.expr()
            elif self.accept("V6ONLY"):
                cfg.listen_v6only = True
            elif self.accept("DUAL"):
                cfg.listen_v6only = False
            else:
                break
        self.expect(";")

    def p_graceful(self) -> None:
        self.take()
        self.expect("RESTART")
        self.expect("WAIT")
        self.config.gr_wait = self.expr()
        self.expect(";")

    def p_table(self) -> None:
        self.take()
        sym = self.get_symbol(self.expect(SYM).value)
        self.accept("SORTED")  # the look-ahead decides whether ``sorted`` follows
        self.define(sym, TABLE, sym.name)
        self.config.tables.append(sym.name)

    def p_debug(self) -> None:
        self.take()
        if self.accept("PROTOCOLS"):
            self.config.debug_protocols = self.debug_mask()
        elif self.accept("COMMANDS"):
            self.expr()
        elif self.accept("LATENCY"):
            if self.accept("LIMIT"):
                self.expr_us()
            else:
                self.bool()
        else:
            raise self.syntax()
        self.expect(";")

    def p_watchdog(self) -> None:
        self.take()
        if not (self.accept("WARNING") or self.accept("TIMEOUT")):
            raise self.syntax()
        self.expr_us()
        self.expect(";")

    def p_log(self) -> None:
        self.take()
        if self.accept("SYSLOG"):
            if self.accept("NAME"):
                self.text()
            dest = "syslog"
        elif self.accept("STDERR"):
            dest = "stderr"
        else:
            dest = self.text()
        if self.accept("ALL"):
            mask = "all"
        else:
            self.expect("{")
            cats = []
            while True:
                t = self.take()
                if t.kind not in (
                    "DEBUG",
                    "TRACE",
                    "INFO",
                    "REMOTE",
                    "WARNING",
                    "ERROR",
                    "AUTH",
                    "FATAL",
                    "BUG",
                ):
                    raise self.syntax()
                cats.append(t.value)
                if not self.accept(","):
                    break
            self.expect("}")
            mask = tuple(cats)
        self.expect(";")
        self.config.logs.append((dest, mask))

    def p_mrtdump(self) -> None:
        self.take()
        if self.accept("PROTOCOLS"):
            self.mrtdump_mask()
        else:
            self.text()
        self.expect(";")

    def p_timeformat(self) -> None:
        self.take()
        if not self.at("ROUTE", "PROTOCOL", "BASE", "LOG"):
            raise self.syntax()
        self.take()
        if self.accept(TEXT):
            if not self.at(";"):
                self.expr()
                self.expect(TEXT)
        elif self.accept("ISO") or self.accept("OLD"):
            if not (self.accept("SHORT") or self.accept("LONG")):
                raise self.syntax()
        else:
            raise self.syntax()
        self.expect(";")

    def p_roa(self) -> None:
        self.take()
        raise self.unsupported("ROA table")

    # --- small nonterminals -------------------------------------------------------------------

    def expr(self) -> int:
        t = self.peek()
        if t.kind == NUM:
            return self.take().value
        if t.kind == "(":
            self.take()
            term = self.term()
            self.expect(")")
            return self.eval_int(term)
        if t.kind == SYM:
            self.take()
            sym = self.get_symbol(t.value)
            if sym.cls != CONSTANT or sym.vtype is not int:
                raise self.error("Number expected")
            return sym.value
        raise self.syntax()

    def expr_us(self) -> int:
        v = self.expr()
        for k, mult in (("S", 1000000), ("MS", 1000), ("US", 1)):
            if self.accept(k):
                return (v * mult) & 0xFFFFFFFF
        raise self.syntax()

    def bool(self) -> bool:
        t = self.peek()
        if t.kind in ("ON", "YES"):
            self.take()
            return True
        if t.kind in ("OFF", "NO"):
            self.take()
            return False
        if t.kind in (NUM, "(", SYM):
            return self.expr() != 0
        return True  # silence means agreement

    def ipa(self) -> Ip:
        return self.literal(IPA, Ip, "IP address expected")

    def text(self) -> str:
        return self.literal(TEXT, str, "String expected")

    def literal(self, kind: str, vtype: type, expected: str):
        """A literal token of ``kind`` or a constant's name of type ``vtype``: the value."""
        t = self.peek()
        if t.kind == kind:
            return self.take().value
        if t.kind == SYM:
            self.take()
            sym = self.get_symbol(t.value)
            if sym.cls != CONSTANT or sym.vtype is not vtype:
                raise self.error(expected)
            return sym.value
        raise self.syntax()

    def text_literal(self) -> str:
        return self.expect(TEXT).value

    def one_of(self, *kinds: str) -> str:
        """The next token, one of the keywords ``kinds``: its text."""
        t = self.take()
        if t.kind not in kinds:
            raise self.syntax()
        return t.value

    def table_ref(self):
        """A routing table's name (``table t1``, ``igp table t1``)."""
        sym = self.get_symbol(self.expect(SYM).value)
        if sym.cls != TABLE:
            raise self.error("Table name expected")
        return sym.value

    def pxlen(self) -> int:
        if self.accept("/"):
            n = self.expr()
            if n > self.bits:  # BIRD checks ``$2 < 0 || $2 > MAX``: a u32 above 2^31 is < 0
                raise self.error(f"Invalid prefix length {_as_int(n)}")
            return n
        if self.accept(":"):
            mask = self.ipa()
            length = _masklen(int(mask), self.bits)
            if length < 0:
                raise self.error(f"Invalid netmask {self.ip_text(mask)}")
            return length
        raise self.syntax()

    def prefix(self) -> tuple:
        addr = self.ipa()
        length = self.pxlen()
        if int(addr) & ((1 << (self.bits - length)) - 1):
            raise self.error("Invalid prefix")
        return addr, length

    def idval(self) -> int:
        t = self.peek()
        if t.kind == NUM:
            return self.take().value
        if t.kind == "(":
            self.take()
            term = self.term()
            self.expect(")")
            return self.eval_int(term)
        if t.kind == RTRID:
            return self.take().value
        if t.kind == IPA:
            self.take()
            if self.ipv6:
                raise self.error(
                    "Router IDs must be entered as hexadecimal numbers or IPv4 addresses in "
                    "IPv6 version"
                )
            return int(t.value)
        if t.kind == SYM:
            self.take()
            sym = self.get_symbol(t.value)
            if sym.cls == CONSTANT and sym.vtype in (int, Quad):
                return int(sym.value)
            if sym.cls == CONSTANT and sym.vtype is Ip and not self.ipv6:
                return int(sym.value)
            raise self.error("Number or IPv4 address constant expected")
        raise self.syntax()

    def ip_text(self, ip) -> str:
        return str(ipaddress.ip_address(int(ip)) if not self.ipv6 else ipaddress.IPv6Address(ip))

    def debug_mask(self) -> frozenset:
        if self.accept("ALL"):
            return frozenset(("all",))
        if self.accept("OFF"):
            return frozenset()
        self.expect("{")
        flags = set()
        while True:
            t = self.take()
            if t.kind not in ("STATES", "ROUTES", "FILTERS", "INTERFACES", "EVENTS", "PACKETS"):
                raise self.syntax()
            flags.add(t.value)
            if not self.accept(","):
                break
        self.expect("}")
        return frozenset(flags)

    def mrtdump_mask(self) -> None:
        if self.accept("ALL") or self.accept("OFF"):
            return
        self.expect("{")
        while True:
            if not (self.accept("STATES") or self.accept("MESSAGES")):
                raise self.syntax()
            if not self.accept(","):
                break
        self.expect("}")

    def iface_patt_list(self) -> model.IfacePattern:
        patt = model.IfacePattern()
        while True:
            positive = not self.accept("-")
            pattern = prefix = None
            if self.at(TEXT):
                pattern = self.take().value
                if self.at(IPA, SYM):
                    prefix = self.prefix_or_ipa()
            else:
                prefix = self.prefix_or_ipa()
            patt.nodes.append((positive, pattern, prefix))
            if not self.accept(","):
                break
        return patt

    def prefix_or_ipa(self) -> str:
        addr = self.ipa()
        if self.at("/", ":"):
            length = self.pxlen()
            if int(addr) & ((1 << (self.bits - length)) - 1):
                raise self.error("Invalid prefix")
        else:
            length = self.bits
        return f"{self.ip_text(addr)}/{length}"

    def eval_int(self, term) -> int:
        try:
            value = self.evaluate(term)
        except FilterRuntimeError:
            value = None
        if type(value) is not int:
            raise self.error("Integer expression expected")
        return value

    def evaluate(self, term):
        """Run a term with no route (BIRD's ``f_eval``), for constants in the config."""
        from .program import evaluate_constant

        return evaluate_constant(term, self.ipv6)

    # --- protocols ---------------------------------------------------------------------------

    def p_protocol(self) -> None:
        start = self.take()
        template = start.kind == "TEMPLATE"
        t = self.take()
        kind = {
            "KERNEL": "kernel",
            "DEVICE": "device",
            "DIRECT": "direct",
            "STATIC": "static",
            "BGP": "bgp",
            "BFD": "bfd",
        }.get(t.kind)
        if kind is None:
            if t.kind in UNSUPPORTED_PROTOCOLS:
                raise self.unsupported(f"The {UNSUPPORTED_PROTOCOLS[t.kind]} protocol")
            raise self.syntax()
        if kind == "device":
            if self.device_defined:
                raise self.error("Kernel device protocol already defined")
            self.device_defined = True
        cls = model.KINDS[kind]
        proto = cls("", template, t.file, t.line)
        sym_cls = TEMPLATE if template else PROTO
        name_template = {"kernel": "kernel", "device": "device", "direct": "direct"}.get(kind, kind)
        # proto_name
        nt = self.peek()
        if nt.kind == SYM:
            self.take()
            sym = self.get_symbol(nt.value)
            if self.at("FROM"):
                self.take()
                src = self.expect(SYM)
                sym = self.define(sym, sym_cls, proto)
                proto.name = sym.name
                self.copy_from(proto, src)
            else:
                sym = self.define(sym, sym_cls, proto)  # the look-ahead is already read
                proto.name = sym.name
        elif nt.kind == "FROM":
            self.take()
            src = self.expect(SYM)
            proto.name = self.default_name(name_template)
            self.get_symbol(proto.name).cls = sym_cls
            self.get_symbol(proto.name).value = proto
            self.copy_from(proto, src)
        else:
            proto.name = self.default_name(name_template)
            s = self.get_symbol(proto.name)
            s.cls = sym_cls
            s.value = proto
        if template:
            self.config.templates[proto.name] = proto
        else:
            self.config.protocols.append(proto)
        self.expect("{")
        body = getattr(self, f"item_{kind}")
        while True:
            t = self.peek()
            if t.kind == "}":
                self.take()
                break
            if self.proto_item(proto) or not body(proto):
                self.expect(";")
        if kind == "bgp" and not template:
            self.bgp_check(proto)

    def copy_from(self, proto: model.Protocol, src_tok: lx.Token) -> None:
        src = self.get_symbol(src_tok.value)
        if src.cls not in (TEMPLATE, PROTO):
            raise self.error("Template or protocol name expected")
        other = src.value
        if other.kind != proto.kind:
            raise self.error("Can't copy configuration from a different protocol type")
        proto.copy_from(other)

    def proto_item(self, p: model.Protocol) -> bool:
        """The options every protocol has; False when the next token starts none of them."""
        k = self.peek().kind
        if k == ";":
            return True
        if k == "PREFERENCE":
            self.take()
            v = self.expr()
            if v > 0xFFFF:
                raise self.error("Invalid preference")
            p.preference = v
            return True
        return self.option(p, PROTO_OPTIONS)

    def limit_spec(self) -> "tuple | None":
        if self.accept("OFF"):
            return None
        n = self.expr()
        action = "disable"
        if self.accept("ACTION"):
            t = self.take()
            if t.kind not in ("WARN", "BLOCK", "RESTART", "DISABLE"):
                raise self.syntax()
            action = t.value
        return (n, action)

    def imexport(self):
        t = self.peek()
        if t.kind == "FILTER":
            self.take()
            return self.filter_ref()
        if t.kind == "WHERE":
            self.take()
            return self.where_filter()
        if t.kind == "ALL":
            self.take()
            return None
        if t.kind == "NONE":
            self.take()
            return model.REJECT
        raise self.syntax()

    def filter_ref(self) -> ast.FilterDef:
        t = self.peek()
        if t.kind == SYM:
            self.take()
            sym = self.get_symbol(t.value)
            if sym.cls != FILTER:
                raise self.error("No such filter.")
            return sym.value
        return self.filter_body(None, t)

    def where_filter(self) -> ast.FilterDef:
        file, line = self.here()
        term = self.term()
        f = ast.FilterDef(None, file, line)
        cond_file, cond_line = self.here()
        f.body = [
            ast.If(
                cond_file,
                cond_line,
                term,
                [ast.Die(cond_file, cond_line, "accept", ())],
                None,
            ),
            ast.Die(cond_file, cond_line, "reject", ()),
        ]
        return f

    # kernel

    def item_kernel(self, p: model.Kernel) -> None:
        if self.option(p, KERNEL_OPTIONS):
            return
        if not self.accept("MERGE"):
            raise self.syntax()
        self.expect("PATHS")
        on = self.bool()
        limit = 16
        if self.accept("LIMIT"):
            limit = self.expr()
            if limit <= 0 or limit > 255:
                raise self.error("Merge paths limit must be in range 1-255")
        p.merge_paths = limit if on else 0

    def item_device(self, p: model.Device) -> None:
        if self.option(p, DEVICE_OPTIONS):
            return
        if not self.accept("PRIMARY"):
            raise self.syntax()
        pattern = self.take().value if self.at(TEXT) else None
        p.primary.append((pattern, self.prefix_or_ipa()))

    # bfd (proto/bfd/config.Y)

    def item_bfd(self, p: model.Bfd) -> None:
        k = self.peek().kind
        if k == "INTERFACE":
            self.take()
            patt = self.iface_patt_list()
            p.interfaces.append((patt, self.bfd_options()))
        elif k == "MULTIHOP":
            self.take()
            p.multihop = self.bfd_options()
        elif k == "NEIGHBOR":
            self.take()
            addr = self.ipa()
            iface = local = None
            multihop = False
            if self.accept("%"):
                iface = self.expect(SYM).value
            elif self.accept("DEV"):
                iface = self.text()
            if self.accept("LOCAL"):
                local = self.ipa()
            if self.accept("MULTIHOP"):
                multihop = self.bool()
            self.peek()  # BIRD checks when the rule is reduced, at the look-ahead
            if multihop and iface is not None:
                raise self.error("Neighbor cannot set both interface and multihop")
            if multihop and local is None:
                raise self.error("Multihop neighbor requires specified local address")
            p.neighbors.append((addr, iface, local, multihop))
        else:
            raise self.syntax()

    def bfd_options(self) -> model.BfdOptions:
        """``{ interval 100 ms; multiplier 3; ... }`` (optional)."""
        o = model.BfdOptions()
        if not self.accept("{"):
            return o
        while not self.accept("}"):
            if self.accept(";"):
                continue
            k = self.peek().kind
            if k not in (
                "INTERVAL",
                "MIN",
                "IDLE",
                "MULTIPLIER",
                "PASSIVE",
                "AUTHENTICATION",
                "PASSWORD",
            ):
                raise self.syntax()
            self.take()
            if k == "INTERVAL":
                o.min_rx = o.min_tx = self.expr_us()
            elif k == "MIN":
                which = self.take().kind
                if which not in ("RX", "TX"):
                    raise self.syntax()
                self.expect("INTERVAL")
                if which == "RX":
                    o.min_rx = self.expr_us()
                else:
                    o.min_tx = self.expr_us()
            elif k == "IDLE":
                self.expect("TX")
                self.expect("INTERVAL")
                o.idle_tx = self.expr_us()
            elif k == "MULTIPLIER":
                o.multiplier = self.expr()
            elif k == "PASSIVE":
                o.passive = self.bool()
            elif k == "AUTHENTICATION":
                o.auth_type = self.bfd_auth_type()
            elif k == "PASSWORD":
                secret = self.text()
                key_id = len(o.passwords) + 1
                if self.accept("{"):
                    while not self.accept("}"):
                        if self.accept(";"):
                            continue
                        if self.accept("ID"):
                            key_id = self.expr()
                        else:
                            raise self.syntax()
                o.passwords.append((key_id, secret))
            self.expect(";")
        return o

    def bfd_auth_type(self) -> str:
        if self.accept("NONE"):
            return "none"
        if self.accept("SIMPLE"):
            return "simple"
        meticulous = self.accept("METICULOUS")
        self.expect("KEYED")
        algo = self.peek().kind
        if algo not in ("MD5", "SHA1"):
            raise self.syntax()
        self.take()
        return ("meticulous-" if meticulous else "") + "keyed-" + algo.lower()

    # direct

    def item_direct(self, p: model.Direct) -> None:
        if self.option(p, DIRECT_OPTIONS):
            return
        if not self.accept("INTERFACE"):
            raise self.syntax()
        p.interfaces.append(self.iface_patt_list())

    # static

    def item_static(self, p: model.Static) -> None:
        if self.option(p, STATIC_OPTIONS):
            return
        rt = self.accept("ROUTE")
        if rt is None:
            raise self.syntax()
        addr, length = self.prefix()
        route = model.StaticRoute(addr, length, "", rt.file, rt.line)
        t = self.take()
        if t.kind == "VIA":
            if self.at(TEXT):
                route.dest = "device"
                route.via_interface = self.take().value
            else:
                route.dest = "router"
                route.via = self.ipa()
                route.via_interface = self.ipa_scope()
        elif t.kind == "MULTIPATH":
            route.dest = "multipath"
            self.expect("VIA")
            while True:
                via = self.ipa()
                iface = self.ipa_scope()
                weight = 1
                while self.at("WEIGHT", "BFD"):
                    if self.accept("WEIGHT"):
                        weight = self.expr()
                        if weight < 1 or weight > 256:
                            raise self.error("Weight must be in range 1-256")
                    else:
                        self.take()
                        self.bool()
                route.multipath.append((via, iface, weight))
                if not self.accept("VIA"):
                    break
        elif t.kind == "RECURSIVE":
            route.dest = "recursive"
            route.via = self.ipa()
        elif t.kind in ("DROP", "BLACKHOLE"):
            route.dest = "blackhole"
        elif t.kind in ("REJECT", "UNREACHABLE"):
            route.dest = "unreachable"
        elif t.kind == "PROHIBIT":
            route.dest = "prohibit"
        else:
            raise self.error("syntax error")
        if self.accept("{"):
            file, line = self.prev.file, self.prev.line
            body = ast.FilterDef(None, file, line)
            while not self.at("}"):
                if self.at("BFD"):
                    self.take()
                    self.bool()
                    self.expect(";")
                    continue
                body.body.append(self.cmd())
            self.take()
            route.commands = body
        p.routes.append(route)

    def ipa_scope(self) -> "str | None":
        if self.accept("%"):
            return self.expect(SYM).value
        return None

    # bgp

    def item_bgp(self, p: model.Bgp) -> "bool | None":
        """One option; True when it consumed its ';' itself."""
        if self.option(p, BGP_OPTIONS):
            return
        k = self.peek().kind
        if k not in ("LOCAL", "NEIGHBOR", "MULTIHOP", "NEXT", "MISSING", "GATEWAY"):
            raise self.syntax()
        self.take()
        if k == "LOCAL":
            if self.accept("AS"):
                p.local_as = self.expr()
            else:
                p.local_address = self.ipa()
                self.expect("AS")
                p.local_as = self.expr()
            return
        if k == "NEIGHBOR":
            addr = iface = None
            if self.at(IPA, SYM):
                addr = self.ipa()
                iface = self.ipa_scope()
            while True:
                if self.accept("PORT"):
                    port = self.expr()
                    if port < 1 or port > 65535:
                        raise self.error("Invalid port number")
                    p.remote_port = port
                elif self.accept("AS"):
                    p.remote_as = self.expr()
                else:
                    break
            if addr is not None:
                self.expect(";")  # BIRD checks when it reduces the rule, at the ';'
                if p.neighbor is not None:
                    raise self.error("Only one neighbor per BGP instance is allowed")
                p.neighbor = addr
                if iface:
                    p.neighbor_interface = iface
                return True
            return
        if k == "MULTIHOP":
            if self.at(";"):
                p.multihop = 64
                return
            n = self.expr()
            self.expect(";")  # BIRD checks in the rule's action, after the ';'
            if n < 1 or n > 255:
                raise self.error("Multihop must be in range 1-255")
            p.multihop = n
            return True
        if k == "NEXT":
            self.expect("HOP")
            if self.accept("SELF"):
                p.next_hop_self, p.next_hop_keep = True, False
            else:
                self.expect("KEEP")
                p.next_hop_keep, p.next_hop_self = True, False
            return
        if k == "MISSING":
            self.expect("LLADDR")
            p.missing_lladdr = self.one_of("SELF", "DROP", "IGNORE")
            return
        if k == "GATEWAY":
            p.gateway = self.one_of("DIRECT", "RECURSIVE")

    # the readers of BGP_OPTIONS' values that are BGP's own

    def expr_pair(self) -> tuple:
        lo = self.expr()
        self.expect(",")
        return lo, self.expr()

    def route_limit(self) -> tuple:
        return self.expr(), "restart"

    def add_paths_bool(self) -> str:
        return "rx tx" if self.bool() else ""

    def allow_local_as(self) -> int:
        return -1 if self.at(";") else self.expr()

    def cease_flags(self) -> None:
        if not self.accept("{"):
            self.bool()
            return
        while True:
            self.cease_flag()
            if not self.accept(","):
                break
        self.expect("}")

    def cease_flag(self) -> None:
        pairs = {
            "CEASE": None,
            "PREFIX": ("LIMIT", "HIT"),
            "ADMINISTRATIVE": ("SHUTDOWN", "RESET"),
            "PEER": ("DECONFIGURED",),
            "CONNECTION": ("REJECTED", "COLLISION"),
            "CONFIGURATION": ("CHANGE",),
            "OUT": ("OF",),
        }
        t = self.take()
        if t.kind not in pairs:
            raise self.syntax()
        follow = pairs[t.kind]
        if follow is None:
            return
        if t.kind == "PREFIX":
            self.expect("LIMIT")
            self.expect("HIT")
        elif t.kind == "OUT":
            self.expect("OF")
            self.expect("RESOURCES")
        else:
            if not self.at(*follow):
                raise self.syntax()
            self.take()

    def bgp_check(self, c: model.Bgp) -> None:
        """BIRD's ``bgp_check_config``, run at the protocol's closing brace."""
        internal = c.internal
        multihop = c.effective_multihop
        gateway = c.gateway or ("recursive" if multihop else "direct")
        if not c.local_as:
            raise self.error("Local AS number must be set")
        if c.neighbor is None:
            raise self.error("Neighbor must be configured")
        if not c.remote_as:
            raise self.error("Remote AS number must be set")
        link_local = self.ipv6 and (int(c.neighbor) >> 118) == 0x3FA  # fe80::/10
        if link_local and not c.neighbor_interface:
            raise self.error("Link-local neighbor address requires specified interface")
        if not (c.capabilities and c.enable_as4) and c.remote_as > 0xFFFF:
            raise self.error("Neighbor AS number out of range (AS4 not available)")
        if not internal and c.rr_client:
            raise self.error("Only internal neighbor can be RR client")
        if internal and c.rs_client:
            raise self.error("Only external neighbor can be RS client")
        if multihop and gateway == "direct":
            raise self.error("Multihop BGP cannot use direct gateway mode")
        src_ll = (
            self.ipv6 and c.local_address is not None and (int(c.local_address) >> 118) == 0x3FA
        )
        if multihop and (link_local or src_ll):
            raise self.error("Multihop BGP cannot be used with link-local addresses")
        if multihop and c.neighbor_interface:
            raise self.error("Multihop BGP cannot be bound to interface")
        if multihop and c.check_link:
            raise self.error("Multihop BGP cannot depend on link state")
        if multihop and c.bfd and c.local_address is None:
            raise self.error("Multihop BGP with BFD requires specified source address")
        if c.secondary:
            raise self.error("BGP with secondary option requires sorted table")
        if not c.graceful_restart and c.llgr:
            raise self.error("Long-lived graceful restart requires basic graceful restart")

    # --- filters and functions ---------------------------------------------------------------

    def p_filter(self) -> None:
        self.take()
        t = self.expect(SYM)
        sym = self.define(self.get_symbol(t.value), FILTER, None)
        self.push_scope()
        f = self.filter_body(sym.name, t)
        sym.value = f
        self.pop_scope()
        self.config.filters[sym.name] = f

    def filter_body(self, name: "str | None", at: lx.Token) -> ast.FilterDef:
        f = ast.FilterDef(name, at.file, at.line)
        f.locals = self.decls(";")
        self.expect("{")
        f.body = self.cmds()
        self.expect("}")
        return f

    def decls(self, sep: str) -> list:
        """``type name; type name; ...`` before a ``{`` (local variables)."""
        out = []
        while self.peek().kind in TYPE_KEYWORDS:
            out.append(self.one_decl())
            self.expect(";")
        return out

    def one_decl(self) -> Symbol:
        vtype = self.type_()
        t = self.expect(SYM)
        sym = self.define(self.get_symbol(t.value), VARIABLE, None)
        sym.vtype = vtype
        return sym

    def type_(self) -> type:
        t = self.take()
        vtype = TYPE_KEYWORDS.get(t.kind)
        if vtype is None:
            raise self.error("syntax error")
        while self.at("SET"):
            self.take()
            set_type = SET_OF.get(vtype)
            if set_type is None:
                raise self.error("You can't create sets of this type.")
            vtype = set_type
        return vtype

    def p_function(self) -> None:
        self.take()
        t = self.expect(SYM)
        sym = self.define(self.get_symbol(t.value), FUNCTION, None)
        func = ast.Function(sym.name, t.file, t.line)
        sym.value = func
        self.push_scope()
        self.expect("(")
        if not self.accept(")"):
            while True:
                func.params.append(self.one_decl())
                if self.accept(")"):
                    break
                self.expect(";")
        func.locals = self.decls(";")
        self.expect("{")
        func.body = self.cmds()
        self.expect("}")
        self.pop_scope()
        self.config.functions[func.name] = func

    CMD_START = frozenset(
        (
            "IF",
            SYM,
            "RETURN",
            "PREFERENCE",
            "UNSET",
            "CASE",
            *BREAK_COMMANDS,
            *STATIC_ATTRS,
            *DYN_ATTR_KEYWORDS,
        )
    )

    def cmds(self) -> list:
        out = []
        while self.peek().kind in self.CMD_START:
            out.append(self.cmd())
        return out

    def block(self) -> list:
        if self.accept("{"):
            body = self.cmds()
            self.expect("}")
            return body
        return [self.cmd()]

    def cmd(self):
        t = self.peek()
        k = t.kind
        if k == "IF":
            self.take()
            cond = self.term()
            self.expect("THEN")
            then = self.block()
            file, line = self.here()
            else_ = None
            if self.accept("ELSE"):
                else_ = self.block()
                file, line = self.here()
            return ast.If(file, line, cond, then, else_)
        if k == SYM:
            self.take()
            sym = self.get_symbol(t.value)
            if self.at("="):
                self.take()
                value = self.term()
                self.expect(";")
                if sym.cls != VARIABLE:
                    raise self.error("You may set only variables.")
                file, line = self.here()
                return ast.SetVar(file, line, sym, value)
            if self.at("("):
                call = self.call(sym)
                self.expect(";")
                return ast.CallStmt(call.file, call.line, call)
            raise self.syntax()
        if k == "RETURN":
            self.take()
            value = self.term()
            self.expect(";")
            file, line = self.here()
            return ast.Return(file, line, value)
        if k == "PREFERENCE":
            self.take()
            self.expect("=")
            value = self.term()
            self.expect(";")
            file, line = self.here()
            return ast.SetPref(file, line, value)
        if k == "UNSET":
            self.take()
            self.expect("(")
            a = self.take()
            if a.kind not in DYN_ATTR_KEYWORDS:
                raise self.error("syntax error")
            self.expect(")")
            self.expect(";")
            file, line = self.here()
            return ast.SetDyn(file, line, a.value, None)
        if k in BREAK_COMMANDS:
            self.take()
            prints = []
            if not self.at(";"):
                while True:
                    prints.append(self.term())
                    if not self.accept(","):
                        break
            self.expect(";")
            file, line = self.here()
            return ast.Die(file, line, BREAK_COMMANDS[k], tuple(prints))
        if k == "CASE":
            return self.case()
        if k in STATIC_ATTRS:
            self.take()
            self.expect("=")
            value = self.term()
            self.expect(";")
            name, writable = STATIC_ATTRS[k]
            if not writable:
                raise self.error("This static attribute is read-only.")
            file, line = self.here()
            return ast.SetStatic(file, line, name, value)
        if k in DYN_ATTR_KEYWORDS:
            self.take()
            name = t.value
            if self.accept("="):
                value = self.term()
                self.expect(";")
                file, line = self.here()
                return ast.SetDyn(file, line, name, value)
            self.expect(".")
            m = self.take()
            if m.kind == "EMPTY":
                self.expect(";")
                file, line = self.here()
                if name not in _LIST_ATTRS:
                    raise self.error("Can't empty that attribute")
                return ast.SetDyn(file, line, name, ast.Empty(file, line, _LIST_ATTRS[name]))
            if m.kind not in ("PREPEND", "ADD", "DELETE", "FILTER"):
                raise self.error("syntax error")
            self.expect("(")
            arg = self.term()
            self.expect(")")
            self.expect(";")
            file, line = self.here()
            op = ast.ListOp(file, line, m.value, ast.DynAttr(file, line, name), arg)
            return ast.SetDyn(file, line, name, op)
        raise self.syntax()

    def case(self):
        t = self.take()
        value = self.term()
        self.expect("{")
        arms = []
        while not self.at("}"):
            if self.accept(ELSECOL):
                arms.append((None, self.cmds()))
                continue
            items = []
            while True:
                items.extend(self.set_item(switch=True))
                if not self.accept(","):
                    break
            self.expect(":")
            arms.append((self.make_set(items), self.cmds()))
        self.take()
        file, line = self.here()
        del t
        return ast.Case(file, line, value, arms)

    def call(self, sym: Symbol) -> ast.Call:
        """``SYM '(' var_list ')'``: checked when the ')' is read (BIRD reduces there)."""
        self.expect("(")
        args = []
        if not self.at(")"):
            while True:
                args.append(self.term())
                if not self.accept(","):
                    break
        self.expect(")")
        if sym.cls != FUNCTION:
            raise self.error("You can't call something which is not a function. Really.")
        func = sym.value
        if len(args) != len(func.params):
            raise self.error(f"Wrong number of arguments for function {sym.name}.")
        file, line = self.here()
        return ast.Call(file, line, func, tuple(args))

    # --- terms -------------------------------------------------------------------------------

    # binary operators: token -> (precedence, op); comparisons are non-associative
    BINOPS = {
        "&&": (1, "&&"),
        "||": (1, "||"),
        "=": (2, "="),
        "!=": (2, "!="),
        "<": (2, "<"),
        "<=": (2, "<="),
        ">": (2, ">"),
        ">=": (2, ">="),
        "~": (2, "~"),
        "!~": (2, "!~"),
        "+": (3, "+"),
        "-": (3, "-"),
        "*": (4, "*"),
        "/": (4, "/"),
    }
    NONASSOC = frozenset(("[=", "=]"))  # declared with the comparisons; no rule uses them

    def term(self, min_prec: int = 1):
        left = self.unary()
        while True:
            t = self.peek()
            entry = self.BINOPS.get(t.kind)
            if entry is None:
                return left
            prec, op = entry
            if prec < min_prec:
                return left
            self.take()
            right = self.term(prec + 1)
            file, line = self.here()
            if op == ">":
                left = ast.BinOp(file, line, "<", right, left)
            elif op == ">=":
                left = ast.BinOp(file, line, "<=", right, left)
            else:
                left = ast.BinOp(file, line, op, left, right)
            if prec == 2 and self.peek().kind in self.BINOPS and self.BINOPS[self.tok.kind][0] == 2:
                raise self.syntax()  # a = b = c: comparisons do not associate

    def postfix(self, left):
        self.expect(".")
        t = self.take()
        file, line = self.here()
        if t.kind == "IP":
            return ast.Method(file, line, "ip", left)
        if t.kind == "LEN":
            return ast.Method(file, line, "len", left)
        if t.kind == "MASK":
            self.expect("(")
            arg = self.term()
            self.expect(")")
            file, line = self.here()
            return ast.Method(file, line, "mask", left, arg)
        if t.kind in ("FIRST", "LAST", "LAST_NONAGGREGATED"):
            return ast.Method(file, line, t.value, left)
        raise self.error("syntax error")

    def unary(self):
        t = self.peek()
        if t.kind == "!":
            self.take()
            operand = self.unary()
            while self.at("."):
                operand = self.postfix(operand)
            file, line = self.here()
            return ast.Not(file, line, operand)
        node = self.primary()
        while self.at("."):
            node = self.postfix(node)
        return node

    def primary(self):
        t = self.peek()
        k = t.kind
        if k == "(":
            return self.paren()
        if k == NUM:
            self.take()
            return ast.Const(t.file, t.line, t.value)
        if k == "TRUE" or k == "FALSE":
            self.take()
            return ast.Const(t.file, t.line, k == "TRUE")
        if k == TEXT:
            self.take()
            return ast.Const(t.file, t.line, t.value)
        if k == IPA:
            self.take()
            if self.at("/"):
                self.take()
                n = self.expect(NUM)
                return ast.Const(t.file, t.line, self.fprefix_value(t.value, n.value))
            return ast.Const(t.file, t.line, t.value)
        if k == RTRID:
            self.take()
            return ast.Const(t.file, t.line, Quad(t.value))
        if k == ENUM:
            self.take()
            code, value = t.value
            return ast.Const(t.file, t.line, ENUM_TYPES[code](value))
        if k == "[":
            return self.set_constant()
        if k == "[=" or k == "/":
            return self.path_mask()
        if k == SYM:
            self.take()
            sym = self.get_symbol(t.value)
            if self.at("("):
                call = self.call(sym)
                call.func.value_used = True
                return call
            # the look-ahead was needed to tell a call from a symbol
            if sym.cls == CONSTANT:
                return ast.Const(t.file, t.line, sym.value)
            if sym.cls == VARIABLE:
                return ast.Var(t.file, t.line, sym)
            raise self.error(f"{sym.name}: variable expected.")
        if k == "DEFINED":
            self.take()
            self.expect("(")
            a = self.term()
            self.expect(")")
            file, line = self.here()
            return ast.Defined(file, line, a)
        if k == "PREFERENCE":
            self.take()
            return ast.Pref(t.file, t.line)
        if k in STATIC_ATTRS:
            self.take()
            return ast.StaticAttr(t.file, t.line, STATIC_ATTRS[k][0])
        if k in DYN_ATTR_KEYWORDS:
            self.take()
            return ast.DynAttr(t.file, t.line, t.value)
        if k == "+":
            self.take()
            self.expect("EMPTY")
            self.expect("+")
            return ast.Empty(t.file, t.line, Path)
        if k == "-":
            self.take()
            dashes = 1
            while self.accept("-"):
                dashes += 1
            if dashes > 3:
                raise self.error("syntax error")
            self.expect("EMPTY")
            for _ in range(dashes):
                self.expect("-")
            return ast.Empty(t.file, t.line, (CList, EcList, LcList)[dashes - 1])
        if k in ("PREPEND", "ADD", "DELETE", "FILTER"):
            self.take()
            self.expect("(")
            a = self.term()
            self.expect(",")
            b = self.term()
            self.expect(")")
            file, line = self.here()
            return ast.ListOp(file, line, t.value, a, b)
        if k == "ROA_CHECK":
            self.take()
            raise self.unsupported("roa_check()")
        raise self.syntax()

    def fprefix_value(self, addr, length: int) -> Net:
        if length > self.bits or int(addr) & ((1 << (self.bits - length)) - 1):
            raise self.error(f"Invalid network prefix: {self.ip_text(addr)}/{_as_int(length)}.")
        return Net((int(addr), length))

    def paren(self):
        """``( term )``, a pair ``(a, b)``, a large community ``(a, b, c)`` or an extended
        community ``(rt, a, b)``; constant ones are built now, like BIRD does."""
        start = self.take()
        if self.at("RT", "RO", "UNKNOWN", "GENERIC"):
            kind = self.ec_kind()
            self.expect(",")
            a = self.term()
            self.expect(",")
            b = self.term()
            self.expect(")")
            return self.make_ec(kind, a, b)
        a = self.term()
        if self.accept(")"):
            return a
        self.expect(",")
        b = self.term()
        if self.accept(","):
            c = self.term()
            self.expect(")")
            file, line = self.here()
            if all(isinstance(x, ast.Const) for x in (a, b, c)):
                if not all(type(x.value) is int for x in (a, b, c)):
                    raise self.error(
                        "LC - Can't operate with value of non-integer type in tuple constructor"
                    )
                return ast.Const(file, line, Lc((a.value, b.value, c.value)))
            return ast.Construct(file, line, "lc", (a, b, c))
        self.expect(")")
        file, line = self.here()
        del start
        if isinstance(a, ast.Const) and isinstance(b, ast.Const):
            if type(a.value) is not int or type(b.value) is not int:
                raise self.error("Can't operate with value of non-integer type in pair constructor")
            for v in (a.value, b.value):
                if v > 0xFFFF:
                    raise self.error(f"Value {_as_int(v)} out of range (0-65535)")
            return ast.Const(file, line, Pair((a.value << 16) | b.value))
        return ast.Construct(file, line, "pair", (a, b))

    def ec_kind(self) -> int:
        t = self.take()
        if t.kind == "UNKNOWN":
            return self.expect(NUM).value
        return EC_KINDS[t.kind]

    def make_ec(self, kind: int, a, b):
        file, line = self.here()
        key_const = isinstance(a, ast.Const)
        if key_const and type(a.value) not in (int, Quad, Ip):
            raise self.error("Can't operate with key of non-integer/IPv4 type in EC constructor")
        if key_const and type(a.value) is Ip and self.ipv6:
            raise self.error("Can't operate with key of non-integer/IPv4 type in EC constructor")
        if isinstance(b, ast.Const):
            if type(b.value) is not int:
                raise self.error("Can't operate with value of non-integer type in EC constructor")
            if key_const:
                from .program import make_ec

                value, bad = make_ec(kind, a.value, b.value)
                if bad:
                    raise self.error(f"Value {_as_int(b.value)} out of range (0-65535)")
                return ast.Const(file, line, value)
        return ast.Construct(file, line, "ec", (a, b), kind)

    def path_mask(self):
        open_tok = self.take()
        items = []
        has_expr = False
        if open_tok.kind == "[=":
            while not self.at("=]"):
                t = self.peek()
                if t.kind == NUM:
                    self.take()
                    if self.accept(".."):
                        hi = self.expect(NUM).value
                        items.append(("range", t.value, hi))
                    else:
                        items.append(("asn", t.value))
                elif t.kind == "*":
                    self.take()
                    items.append(("*",))
                elif t.kind == "?":
                    self.take()
                    items.append(("?",))
                elif t.kind == SYM:
                    self.take()
                    sym = self.get_symbol(t.value)
                    if sym.cls == CONSTANT:
                        items.append(("expr", ast.Const(t.file, t.line, sym.value)))
                    elif sym.cls == VARIABLE:
                        items.append(("expr", ast.Var(t.file, t.line, sym)))
                    else:
                        raise self.error(f"{sym.name}: variable expected.")
                    has_expr = True
                elif t.kind == "(":
                    self.take()
                    items.append(("expr", self.term()))
                    self.expect(")")
                    has_expr = True
                else:
                    raise self.syntax()
            self.take()
        else:
            while not self.at("/"):
                t = self.peek()
                if t.kind == NUM:
                    self.take()
                    items.append(("asn", t.value))
                elif t.kind == "?":
                    self.take()
                    items.append(("*",))  # the old syntax's ? is any run
                else:
                    raise self.syntax()
            self.take()
        file, line = self.here()
        if has_expr:
            return ast.PathMaskExpr(file, line, tuple(items))
        return ast.Const(file, line, PathMask(items))

    # --- set constants -----------------------------------------------------------------------

    def set_constant(self):
        start = self.take()
        t = self.peek()
        if t.kind == IPA:
            # a prefix set when the address is followed by '/'
            self.take()
            if self.at("/"):
                entries = [self.fprefix_after(t)]
                while self.accept(","):
                    entries.append(self.fprefix())
                self.expect("]")
                file, line = self.here()
                return ast.Const(file, line, PrefixSet(entries, self.bits))
            first = [(t.value, t.value)]
            if self.accept(".."):
                hi = self.set_atom()
                first = [(t.value, hi)]
            items = first
            while self.accept(","):
                items.extend(self.set_item())
            self.expect("]")
        else:
            items = []
            while True:
                items.extend(self.set_item())
                if not self.accept(","):
                    break
            self.expect("]")
        file, line = self.here()
        del start
        return ast.Const(file, line, self.make_set(items))

    def fprefix_after(self, addr_tok: lx.Token) -> tuple:
        self.expect("/")
        n = self.expect(NUM).value
        net = self.fprefix_value(addr_tok.value, n)
        return self.fprefix_range(net)

    def fprefix(self) -> tuple:
        t = self.expect(IPA)
        return self.fprefix_after(t)

    def fprefix_range(self, net: Net) -> tuple:
        addr, length = net
        if self.accept("+"):
            return (addr, length, length, self.bits)
        if self.accept("-"):
            return (addr, length, 0, length)
        if self.accept("{"):
            lo = self.expect(NUM).value
            self.expect(",")
            hi = self.expect(NUM).value
            self.expect("}")
            if not (lo <= hi <= self.bits):
                raise self.error(f"Invalid prefix pattern range: {{{_as_int(lo)}, {_as_int(hi)}}}.")
            return (addr, length, lo, hi)
        return (addr, length, length, length)

    def make_set(self, items: list) -> FSet:
        """The set of ``items`` (ranges and pair grids); its type is its first element's."""
        if not items:
            return FSet([], type(None))
        first = items[0]
        vtype = Pair if first[0] == "grid" else type(first[0])
        return FSet(items, vtype)

    def set_atom(self, switch: bool = False):
        t = self.peek()
        k = t.kind
        if k == NUM:
            self.take()
            return t.value
        if k == RTRID:
            self.take()
            return Quad(t.value)
        if k == IPA:
            self.take()
            return t.value
        if k == ENUM:
            self.take()
            code, value = t.value
            return ENUM_TYPES[code](value)
        if k == "(":
            self.take()
            term = self.term()
            self.expect(")")
            if switch:
                return self.eval_int(term)
            try:
                value = self.evaluate(term)
            except FilterRuntimeError:
                value = None
            if not _set_type_ok(value):
                raise self.error("Set-incompatible type")
            return value
        if k == SYM and not switch:
            self.take()
            sym = self.get_symbol(t.value)
            if sym.cls != CONSTANT:
                raise self.error(f"{sym.name}: constant expected")
            if not _set_type_ok(sym.value):
                raise self.error(f"{sym.name}: set-incompatible type")
            return sym.value
        raise self.syntax()

    def cnum(self) -> int:
        return self.eval_int(self.term())

    def set_item(self, switch: bool = False) -> list:
        """One item of a set: a list of ``(lo, hi)`` ranges."""
        if self.at("("):
            return self.paren_item(switch)
        lo = self.set_atom(switch)
        if self.accept(".."):
            hi = self.set_atom(switch)
            return [(lo, hi)]
        return [(lo, lo)]

    def paren_item(self, switch: bool) -> list:
        """``(a, b)`` pairs, ``(a, b, c)`` large communities, ``(rt, a, b)`` extended
        communities, with ``*`` and ``..`` ranges; or a parenthesised constant. Items are
        ``(lo, hi)`` ranges, or ``("grid", alo, ahi, blo, bhi)`` for BIRD's pair sets."""
        self.take()
        if self.at("RT", "RO", "UNKNOWN", "GENERIC"):
            kind = self.ec_kind()
            self.expect(",")
            key = self.cnum()
            self.expect(",")
            if self.accept("*"):
                vf, vt = 0, 0xFFFFFFFF
            else:
                vf = self.cnum()
                vt = self.cnum() if self.accept("..") else vf
            self.expect(")")
            from .program import make_ec

            if kind != 0x8000 and key >= 0x10000 and vt == 0xFFFFFFFF:
                vt = 0xFFFF
            lo, bad1 = make_ec(kind, key, vf)
            hi, bad2 = make_ec(kind, key, vt)
            if bad1 or bad2:
                raise self.error(f"Value {_as_int(vf if bad1 else vt)} out of range (0-65535)")
            return [(lo, hi)]
        # the first component: '*', or a term (alone: a parenthesised constant)
        if self.accept("*"):
            a = ("*", 0, 0xFFFF)
        else:
            term = self.term()
            if self.accept(")"):
                value = self.eval_int(term) if switch else self.evaluate(term)
                if not switch and not _set_type_ok(value):
                    raise self.error("Set-incompatible type")
                if self.accept(".."):
                    return [(value, self.set_atom(switch))]
                return [(value, value)]
            lo = self.eval_int(term)
            a = ("range", lo, self.cnum()) if self.accept("..") else ("one", lo, lo)
        self.expect(",")
        b = self.component()
        if self.at(","):
            # a large community: (n, n, n|n..n|*), (n, n..n, *), (n|n..n|*, *, *)
            if a[0] == "*" and b[0] != "*":
                raise self.syntax()
            if a[0] == "range" and b[0] != "*":
                raise self.syntax()
            self.take()
            if a[0] == "one" and b[0] == "one":
                c = self.component()
            elif not self.at("*"):
                raise self.syntax()
            else:
                self.take()
                c = ("*", 0, 0xFFFFFFFF)
            self.expect(")")
            top = 0xFFFFFFFF
            lo = Lc((a[1], b[1], c[1]))
            hi = Lc((a[2] if a[0] != "*" else top, b[2] if b[0] != "*" else top, c[2]))
            if c[0] == "*":
                hi = Lc((hi[0], hi[1], top))
            if a[0] == b[0] == c[0] == "one" and self.accept(".."):
                self.expect("(")
                x = self.cnum()
                self.expect(",")
                y = self.cnum()
                self.expect(",")
                z = self.cnum()
                self.expect(")")
                hi = Lc((x, y, z))
            return [(lo, hi)]
        self.expect(")")
        if a[0] == "one" and b[0] == "one" and self.at(".."):
            self.take()
            self.expect("(")
            x = self.cnum()
            self.expect(",")
            y = self.cnum()
            self.expect(")")
            return [self.pair_item(a[1], x, b[1], y)]
        if a[0] == "*":  # (*, b) (*, b..c) (*, *)
            if b[0] == "*":
                return [self.pair_item(0, 0xFFFF, 0, 0xFFFF)]
            return [self.pair_grid(0, 0xFFFF, b[1], b[2])]
        if b[0] == "*":  # (a, *) (a..b, *)
            return [self.pair_item(a[1], a[2], 0, 0xFFFF)]
        if a[0] == "one":  # (a, b) (a, b..c)
            return [self.pair_item(a[1], a[1], b[1], b[2])]
        return [self.pair_grid(a[1], a[2], b[1], b[2])]

    def component(self) -> tuple:
        """One part of a pair or large community in a set: ``*``, ``n`` or ``n..m``."""
        if self.accept("*"):
            return ("*", 0, 0xFFFF)
        lo = self.cnum()
        if self.accept(".."):
            return ("range", lo, self.cnum())
        return ("one", lo, lo)

    def _u16(self, *values) -> None:
        for v in values:
            if v > 0xFFFF:
                raise self.error(f"Value {_as_int(v)} out of range (0-65535)")

    def pair_item(self, fa, ta, fb, tb) -> tuple:
        """BIRD's ``f_new_pair_item``: one range from ``(fa, fb)`` to ``(ta, tb)``."""
        self._u16(fa, ta, fb, tb)
        if ta < fa or tb < fb:
            raise self.error("From value cannot be higher that To value in pair sets")
        return (Pair((fa << 16) | fb), Pair((ta << 16) | tb))

    def pair_grid(self, fa, ta, fb, tb) -> tuple:
        """BIRD's ``f_new_pair_set``: ``(i, fb..tb)`` for every ``i`` in ``fa..ta``."""
        self._u16(fa, ta, fb, tb)
        if ta < fa or tb < fb:
            raise self.error("From value cannot be higher that To value in pair sets")
        return ("grid", fa, ta, fb, tb)

    TOP = {
        ";": p_semicolon,
        "DEFINE": p_define,
        "EVAL": p_eval,
        "ROUTER": p_router,
        "LISTEN": p_listen,
        "GRACEFUL": p_graceful,
        "TABLE": p_table,
        "ROA": p_roa,
        "PROTOCOL": p_protocol,
        "TEMPLATE": p_protocol,
        "DEBUG": p_debug,
        "WATCHDOG": p_watchdog,
        "FILTER": p_filter,
        "FUNCTION": p_function,
        "LOG": p_log,
        "MRTDUMP": p_mrtdump,
        "TIMEFORMAT": p_timeformat,
    }


_LIST_ATTRS = {
    "bgp_path": Path,
    "bgp_community": CList,
    "bgp_cluster_list": CList,
    "bgp_ext_community": EcList,
    "bgp_large_community": LcList,
}


def _set_type_ok(value) -> bool:
    """BIRD's ``f_valid_set_type``: int, pair, quad, enum, ip, ec, lc."""
    return type(value) in (int, Pair, Quad, Ip, Ec, Lc) or isinstance(value, Enum)


def _as_int(v: int) -> int:
    """A u32 as BIRD prints it with %d."""
    return v - (1 << 32) if v >= 1 << 31 else v


def _masklen(mask: int, bits: int) -> int:
    inv = ((1 << bits) - 1) ^ mask
    if inv & (inv + 1):
        return -1
    return bits - inv.bit_length()


def parse_file(path: str, ipv6: bool = False, fork: bool = True) -> model.BirdConfig:
    """Parse ``path`` (and its includes) as BIRD 1.6 (``ipv6``: as bird6) would."""
    return Parser(path, ipv6, fork).parse()

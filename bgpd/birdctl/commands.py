"""The server's command grammar (BIRD 1.6's ``CF_CLI`` rules, nest/config.Y and
sysdep/unix/config.Y), for the commands bgpd answers.

:func:`parse_command` turns one command line into a command object or raises
:class:`~.lexer.CliError` with BIRD's reply (``9001 syntax error`` and the ``cf_error``
texts such as ``9001 Invalid prefix`` or ``9001 X is not a protocol``). As in BIRD, the
server takes only full keywords: abbreviations (``sh ro``) are expanded by the client
(:mod:`.cmdtable`), and BIRD's own server answers them with ``9001 syntax error`` too.

Symbols are resolved against the snapshot's protocol and table names, which the caller
passes in; a name that is neither is what BIRD calls an undefined symbol.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from .lexer import CliError, Token, tokenize
from .snapshot import Route, RoutePath
from .where import compile_where, make_prefix


@dataclass(frozen=True)
class ShowStatus:
    pass


@dataclass(frozen=True)
class ShowMemory:
    pass


@dataclass(frozen=True)
class ShowProtocols:
    verbose: bool = False
    name: str | None = None  # a symbol: exactly that protocol
    pattern: str | None = None  # a quoted glob


@dataclass(frozen=True)
class ShowRoute:
    prefix: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    show_for: bool = False
    table: str | None = None
    where: Callable[[Route, RoutePath], bool] | None = field(default=None, compare=False)
    where_text: str | None = None
    verbose: bool = False
    primary_only: bool = False
    filtered: bool = False
    export_mode: str | None = None
    export_protocol: str | None = None
    protocol: str | None = None
    stats: int = 0


@dataclass(frozen=True)
class Configure:
    check: bool = False  # ``configure check``: parse only
    soft: bool = False
    path: str | None = None  # ``"file"``; None: the file the daemon was started with


@dataclass(frozen=True)
class ProtoCommand:
    """``enable|disable|restart|reload [in|out]`` of one protocol, a pattern or all."""

    action: str  # enable disable restart reload "reload in" "reload out"
    name: str | None = None
    pattern: str | None = None  # "*" for ``all``
    message: str | None = None


@dataclass(frozen=True)
class Down:
    pass


@dataclass(frozen=True)
class GracefulRestart:
    """``graceful restart``: BIRD 2.0's command (not BIRD 1.6's): stop for a graceful
    restart, the neighbors keeping our routes."""


@dataclass(frozen=True)
class Restrict:
    pass


@dataclass(frozen=True)
class Unsupported:
    """A BIRD command bgpd does not implement (``show interfaces``, ``show ospf``...)."""

    command: str


Command = (
    ShowStatus
    | ShowMemory
    | ShowProtocols
    | ShowRoute
    | Configure
    | ProtoCommand
    | Down
    | GracefulRestart
    | Restrict
    | Unsupported
)

# commands of BIRD's grammar that bgpd recognises but does not implement
UNSUPPORTED_FIRST = {"dump", "eval", "echo", "debug", "mrtdump", "add", "delete", "flush"}
UNSUPPORTED_SHOW = {
    "interfaces",
    "roa",
    "symbols",
    "static",
    "ospf",
    "rip",
    "bfd",
    "babel",
}


class _Cursor:
    def __init__(self, toks: list[Token]) -> None:
        self.toks = toks
        self.pos = 0

    def peek(self) -> Token | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self) -> Token:
        t = self.peek()
        if t is None:
            raise CliError("syntax error")
        self.pos += 1
        return t

    def kw(self, *words: str) -> str | None:
        t = self.peek()
        if t is not None and t.kind == "KW" and t.value in words:
            self.pos += 1
            return str(t.value)
        return None

    def end(self) -> None:
        if self.pos != len(self.toks):
            raise CliError("syntax error")


def parse_command(
    line: str,
    protocols: Collection[str] = (),
    tables: Collection[str] = ("master",),
    ipv6: bool = False,
) -> Command:
    toks = tokenize(line, ipv6)
    c = _Cursor(toks)
    first = c.peek()
    if first is None or first.kind != "KW":
        raise CliError("syntax error")
    word = str(first.value)
    c.pos += 1
    if word == "show":
        return _parse_show(c, protocols, tables, ipv6, line)
    if word == "configure":
        return _parse_configure(c)
    if word in ("enable", "disable", "restart", "reload"):
        action = word
        if word == "reload" and (d := c.kw("in", "out")):
            action = f"reload {d}"
        name, pattern = _proto_patt(c, allow_empty=False)
        message = None
        if action in ("enable", "disable", "restart"):
            t = c.peek()
            if t is not None and t.kind == "TEXT":
                c.pos += 1
                message = str(t.value)
        c.end()
        return ProtoCommand(action, name, pattern, message)
    if word == "down":
        c.end()
        return Down()
    if word == "graceful":  # BIRD 2.0's; BIRD 1.6.8 answers 9001 syntax error
        if not c.kw("restart"):
            raise CliError("syntax error")
        c.end()
        return GracefulRestart()
    if word == "restrict":
        c.end()
        return Restrict()
    if word in UNSUPPORTED_FIRST:
        return Unsupported(word)
    raise CliError("syntax error")


def _proto_patt(c: _Cursor, allow_empty: bool) -> tuple[str | None, str | None]:
    """proto_patt (SYM | ALL | TEXT) and proto_patt2 (SYM | TEXT | nothing)."""
    t = c.peek()
    if t is None:
        if allow_empty:
            return None, None
        raise CliError("syntax error")
    if t.kind == "SYM":
        c.pos += 1
        return str(t.value), None
    if t.kind == "TEXT":
        c.pos += 1
        return None, str(t.value)
    if not allow_empty and t.is_kw("all"):
        c.pos += 1
        return None, "*"
    if allow_empty:
        return None, None
    raise CliError("syntax error")


def _parse_show(c, protocols, tables, ipv6, line) -> Command:
    what = c.kw("status", "memory", "protocols", "route", *sorted(UNSUPPORTED_SHOW))
    if what == "status":
        c.end()
        return ShowStatus()
    if what == "memory":
        c.end()
        return ShowMemory()
    if what == "protocols":
        verbose = c.kw("all") is not None
        name, pattern = _proto_patt(c, allow_empty=True)
        c.end()
        return ShowProtocols(verbose, name, pattern)
    if what == "route":
        return _parse_route(c, protocols, tables, ipv6)
    if what is not None:
        return Unsupported(f"show {what}")
    raise CliError("syntax error")


def _parse_configure(c: _Cursor) -> Command:
    if c.kw("check"):
        path = _opt_text(c)
        c.end()
        return Configure(check=True, path=path)
    if c.kw("confirm", "undo"):
        c.end()
        return Unsupported("configure")
    soft = c.kw("soft") is not None
    path = _opt_text(c)
    if c.kw("timeout"):
        return Unsupported("configure timeout")
    c.end()
    return Configure(soft=soft, path=path)


def _opt_text(c: _Cursor) -> str | None:
    t = c.peek()
    if t is not None and t.kind == "TEXT":
        c.pos += 1
        return str(t.value)
    return None


def _prefix(c: _Cursor, tok: Token, allow_ip: bool, ipv6: bool):
    """``prefix`` (IP/len) or, after ``for``, ``prefix_or_ipa``."""
    n = c.peek()
    if n is not None and n.is_op("/"):
        c.pos += 1
        ln = c.take()
        if ln.kind != "NUM":
            raise CliError("syntax error")
        length = int(ln.value)  # type: ignore[arg-type]
        if length > (128 if ipv6 else 32):
            raise CliError("Invalid prefix")
        return make_prefix(tok.value, length)
    if allow_ip:
        return ipaddress.ip_network(tok.value)
    raise CliError("syntax error")


def _parse_route(c: _Cursor, protocols, tables, ipv6) -> ShowRoute:
    args: dict = {}
    while (t := c.peek()) is not None:
        if t.kind == "IP":
            c.pos += 1
            if "prefix" in args:
                raise CliError("Only one prefix expected")
            args["prefix"] = _prefix(c, t, False, ipv6)
        elif t.is_kw("for"):
            c.pos += 1
            ip = c.take()
            if ip.kind == "SYM":
                raise CliError("IP address expected")  # config.Y ipa: SYM not a constant
            if ip.kind != "IP":
                raise CliError("syntax error")
            if "prefix" in args:
                raise CliError("Only one prefix expected")
            args["prefix"] = _prefix(c, ip, True, ipv6)
            args["show_for"] = True
        elif t.is_kw("table"):
            c.pos += 1
            s = c.take()
            if s.kind != "SYM":
                raise CliError("syntax error")
            if s.value not in tables:
                raise CliError(f"{s.value} is not a table")
            args["table"] = str(s.value)
        elif t.is_kw("filter"):
            raise CliError("syntax error")  # named and inline filters: not supported
        elif t.is_kw("where"):
            c.pos += 1
            if "where" in args:
                raise CliError("Filter specified twice")
            start = c.pos
            pred, c.pos = compile_where(c.toks, c.pos, ipv6)
            args["where"] = pred
            args["where_text"] = " ".join(tok.text for tok in c.toks[start : c.pos])
        elif t.is_kw("all"):
            c.pos += 1
            args["verbose"] = True
        elif t.is_kw("primary"):
            c.pos += 1
            args["primary_only"] = True
        elif t.is_kw("filtered"):
            c.pos += 1
            args["filtered"] = True
        elif t.is_kw("export", "preexport", "noexport", "protocol"):
            c.pos += 1
            s = c.take()
            if s.kind != "SYM":
                raise CliError("syntax error")
            key = "protocol" if t.value == "protocol" else "export_protocol"
            if key in args:
                raise CliError("Protocol specified twice")
            if s.value not in protocols:
                raise CliError(f"{s.value} is not a protocol")
            args[key] = str(s.value)
            if key == "export_protocol":
                args["export_mode"] = str(t.value)
        elif t.is_kw("stats"):
            c.pos += 1
            args["stats"] = 1
        elif t.is_kw("count"):
            c.pos += 1
            args["stats"] = 2
        elif t.kind == "SYM":
            # a symbol where r_args can only take a prefix: BIRD's ipa rule refuses it
            raise CliError("IP address expected")
        else:
            raise CliError("syntax error")
    return ShowRoute(**args)

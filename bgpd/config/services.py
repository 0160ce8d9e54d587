"""``services``: prefixes announced while a health check passes (docs/configuration.md).

In the spirit of ExaBGP's healthcheck: each service names its prefixes, one check (``tcp``,
``http`` or ``command``), how often it runs and how long it may take, the ``rise``/``fall``
hysteresis, the attributes its routes carry while it is up, and what happens when it is
down (``on_fail``: withdraw, or announce with other attributes). The daemon runs the checks
(bgpd/speaker/services.py); the routes are the engine's (bgpd/rde/origins.py).

Durations (``interval``, ``timeout``, and the route API's ``--lease``) share one grammar,
:func:`parse_duration`.
"""

import ipaddress
import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from . import checks
from .checks import describe
from .errors import Invalid
from .fields import join_key, key, section

# --- durations -------------------------------------------------------------------------------

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(value: Any) -> float:
    """Seconds from a number (``30``, ``0.5``) or text: ``"30"``, ``"500ms"``, ``"30s"``,
    ``"2m"``, ``"1h30m"``, ``"1d"``. Raises ValueError saying what was expected."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 30s, got {describe(value)}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        else:
            pos = 0
            seconds = 0.0
            for m in _PART.finditer(text):
                if m.start() != pos:
                    break
                seconds += float(m.group(1)) * _UNITS[m.group(2)]
                pos = m.end()
            if not text or pos != len(text):
                raise ValueError(
                    f"{value!r} is not a duration (a number of seconds, or e.g. 500ms, 30s, "
                    "2m, 1h30m)"
                )
    else:
        raise ValueError(f"expected a duration like 30s, got {describe(value)}")
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise ValueError(f"{value!r} is not a duration")
    return seconds


def duration(lo: float, hi: float) -> checks.Checker:
    """A config checker: a duration between ``lo`` and ``hi`` seconds."""

    def check(value: Any) -> float:
        try:
            seconds = parse_duration(value)
        except ValueError as e:
            raise Invalid(str(e)) from None
        if not lo <= seconds <= hi:
            raise Invalid(f"{value!r} is out of range ({lo:g}s..{hi:g}s)")
        return seconds

    return check


# --- route attributes ------------------------------------------------------------------------

U32 = 2**32 - 1
MAX_PREPEND = 32


def _communities(value: Any) -> tuple[int, ...]:
    # bgpd.policy is imported when a service uses it (as schema._policies does): importing
    # the config (every CLI command does) stays cheap
    from bgpd.policy import PolicyError
    from bgpd.policy.values import parse_community

    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    out = []
    for i, v in enumerate(items):
        try:
            (hi, _), (lo, _) = parse_community(v, "")
        except PolicyError as e:
            raise Invalid(e.reason, f"[{i}]" if isinstance(value, list) else None) from None
        out.append(hi << 16 | lo)
    return tuple(out)


def _large_communities(value: Any) -> tuple[tuple[int, int, int], ...]:
    from bgpd.policy import PolicyError
    from bgpd.policy.values import parse_large_community

    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    out = []
    for i, v in enumerate(items):
        try:
            (a, _), (b, _), (c, _) = parse_large_community(v, "")
        except PolicyError as e:
            raise Invalid(e.reason, f"[{i}]" if isinstance(value, list) else None) from None
        out.append((a, b, c))
    return tuple(out)


def _next_hop(value: Any) -> str:
    address = checks.ip_address(value)
    ip = ipaddress.ip_address(address)
    if ip.is_multicast or ip.is_unspecified:
        raise Invalid(f"{address} is not a unicast address")
    if ip.version == 6 and ip.is_link_local:
        raise Invalid(f"{address} is link-local: give a global address")
    return address


@dataclass(frozen=True, kw_only=True)
class FailAttrs:
    """``on_fail`` as a mapping: the service's routes stay announced, changed like this."""

    communities: tuple[int, ...] = key(_communities, (), doc="communities added")
    large_communities: tuple = key(_large_communities, (), doc="large communities added")
    local_pref: int | None = key(
        checks.optional(checks.integer(0, U32)), None, doc="LOCAL_PREF instead"
    )
    med: int | None = key(checks.optional(checks.integer(0, U32)), None, doc="MED instead")
    as_path_prepend: int | None = key(
        checks.optional(checks.integer(0, MAX_PREPEND)), None, doc="AS prepends instead"
    )


WITHDRAW = "withdraw"


def _on_fail(value: Any) -> "str | FailAttrs":
    if value is None or value == WITHDRAW:
        return WITHDRAW
    if isinstance(value, str):
        raise Invalid(
            f"expected withdraw or a mapping of attributes "
            f"{{communities, large_communities, local_pref, med, as_path_prepend}}, got {value!r}"
        )
    if not isinstance(value, dict) or not value:
        raise Invalid(
            "expected withdraw or a non-empty mapping of attributes "
            f"{{communities, large_communities, local_pref, med, as_path_prepend}}, "
            f"got {describe(value)}"
        )
    return section(FailAttrs, value)


# --- the checks --------------------------------------------------------------------------------


def _host(text: str, whole: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise Invalid(
            f"{whole!r}: {text!r} is not an IP address (bgpd does not resolve names: "
            "write the address)"
        ) from None


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise Invalid(f"{whole!r}: {text!r} is not a port (1..65535)")
    return int(text)


def split_host_port(text: str) -> tuple[str, int | None]:
    """``"192.0.2.1:80"``, ``"[2001:db8::1]:80"`` or a host alone (port None)."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise Invalid(f"{text!r}: no ] after the IPv6 address")
        if rest and not rest.startswith(":"):
            raise Invalid(f"{text!r}: expected :PORT after ]")
        return _host(host, text), (_port(rest[1:], text) if rest else None)
    if text.count(":") > 1:
        raise Invalid(f"{text!r}: write an IPv6 address with a port as [ADDRESS]:PORT")
    host, sep, port = text.partition(":")
    return _host(host, text), (_port(port, text) if sep else None)


def _tcp(value: Any) -> str:
    text = checks.string()(value).strip()
    host, port = split_host_port(text)
    if port is None:
        raise Invalid(f"{text!r} has no port: write ADDRESS:PORT ([ADDRESS]:PORT for IPv6)")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _http(value: Any) -> str:
    text = checks.string()(value).strip()
    parts = urlsplit(text)
    if parts.scheme != "http":
        raise Invalid(f"{text!r}: only http:// URLs are checked (no https, no other scheme)")
    netloc = parts.netloc
    if not netloc or "@" in netloc:
        raise Invalid(f"{text!r}: expected http://ADDRESS[:PORT]/PATH")
    split_host_port(netloc)
    return text


def _command(value: Any) -> str:
    text = checks.string()(value)
    if not text.strip():
        raise Invalid("must not be blank")
    return text


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/-]{0,63}")


def _name(value: Any) -> str:
    text = checks.string()(value)
    if not _NAME.fullmatch(text):
        raise Invalid(
            f"{text!r} is not a valid service name (1..64 letters, digits and . _ : @ / -, "
            "starting with a letter or a digit)"
        )
    return text


def _prefixes(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise Invalid("expected a prefix or a non-empty list of prefixes")
    out: list[str] = []
    for i, item in enumerate(items):
        where = f"[{i}]" if isinstance(value, list) else None
        try:
            net = checks.network(item)
        except Invalid as e:
            raise Invalid(e.reason, where) from None
        if net in out:
            raise Invalid(f"{net} is listed twice", where)
        out.append(net)
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class Service:
    """One ``services`` entry."""

    name: str | None = key(checks.optional(_name), None, doc="the service's name")
    prefix: tuple[str, ...] = key(_prefixes, doc="prefix or prefixes announced")
    tcp: str | None = key(checks.optional(_tcp), None, doc="check: connect to ADDRESS:PORT")
    http: str | None = key(checks.optional(_http), None, doc="check: GET this URL")
    command: str | None = key(checks.optional(_command), None, doc="check: run this (sh -c)")
    interval: float = key(duration(0.1, 86400), 5.0, doc="time between checks")
    timeout: float | None = key(
        checks.optional(duration(0.05, 86400)), None, doc="how long a check may take"
    )
    rise: int = key(checks.integer(1, 1000), 3, doc="passes in a row to come up")
    fall: int = key(checks.integer(1, 1000), 3, doc="failures in a row to go down")
    next_hop: str | None = key(checks.optional(_next_hop), None, doc="NEXT_HOP (null: ours)")
    communities: tuple[int, ...] = key(_communities, (), doc="communities")
    large_communities: tuple = key(_large_communities, (), doc="large communities")
    local_pref: int | None = key(checks.optional(checks.integer(0, U32)), None, doc="LOCAL_PREF")
    med: int | None = key(checks.optional(checks.integer(0, U32)), None, doc="MED")
    as_path_prepend: int = key(checks.integer(0, MAX_PREPEND), 0, doc="prepend our AS N times")
    on_fail: "str | FailAttrs" = key(_on_fail, WITHDRAW, doc="withdraw, or attributes to set")

    @property
    def check_kind(self) -> str:
        return "tcp" if self.tcp else "http" if self.http else "command"

    @property
    def target(self) -> str:
        return self.tcp or self.http or self.command or ""

    @property
    def check_timeout(self) -> float:
        """The timeout, or its default: 2 s, or the interval when that is shorter."""
        return self.timeout if self.timeout is not None else min(2.0, self.interval)

    @property
    def check(self) -> tuple:
        """What a check runs (a reload that changes it forgets the results so far)."""
        return (self.check_kind, self.target)


def _check_service(s: Service, given: frozenset) -> Service:
    kinds = [k for k in ("tcp", "http", "command") if getattr(s, k) is not None]
    if not kinds:
        raise Invalid("a service needs one check: tcp, http or command")
    if len(kinds) > 1:
        raise Invalid(f"{' and '.join(kinds)} exclude each other: one check per service", kinds[1])
    if s.timeout is not None and s.timeout > s.interval:
        raise Invalid(
            f"timeout {s.timeout:g}s is longer than the interval {s.interval:g}s", "timeout"
        )
    if s.next_hop is not None:
        fam = checks.address_family(s.next_hop)
        for p in s.prefix:
            if checks.address_family(p.split("/")[0]) != fam:
                raise Invalid(f"{s.next_hop} is not of the same family as {p}", "next_hop")
    return s


def services(value: Any) -> tuple[Service, ...]:
    """The ``services`` list: each entry a :class:`Service`, names unique (a service without
    a name is named after its first prefix)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise Invalid(f"expected a list of services, got {describe(value)}")
    out: list[Service] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(value):
        try:
            s = section(Service, item, None, {Service: _check_service})
        except Invalid as e:
            raise Invalid(e.reason, join_key(f"[{i}]", e.key)) from None
        if s.name is None:
            s = replace(s, name=s.prefix[0])
        if s.name in seen:
            where = "name" if isinstance(item, dict) and "name" in item else "prefix"
            raise Invalid(
                f"a service named {s.name!r} is already services[{seen[s.name]}]"
                + ("" if where == "name" else " (give this one a name)"),
                f"[{i}].{where}",
            )
        seen[s.name] = i
        out.append(s)
    return tuple(out)

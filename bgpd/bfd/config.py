"""The ``bfd:`` section of a neighbor (or template, or dynamic range): parse and validate.

Shape (every key optional)::

    bfd:
      min_tx: 300ms        # bfd.DesiredMinTxInterval once Up; "300ms", "0.3s", "300000us"
      min_rx: 300ms        # bfd.RequiredMinRxInterval; a bare integer means milliseconds
      multiplier: 3        # bfd.DetectMult, 1..255
      idle_tx: 1s          # transmit interval while not Up (RFC 5880 §6.8.3: at least 1 s)
      strict: false        # true: BGP may not come up while this session is not Up
      multihop: false      # RFC 5883 (port 4784) instead of RFC 5881 (3784, TTL 255)
      min_ttl: null        # multihop only: lowest TTL/hop limit accepted (null: any)
      passive: false       # wait for the peer's first packet before sending
      interface: null      # single hop: bind to this interface (required for fe80::/10)
      auth:
        type: keyed-sha1   # simple | keyed-md5 | meticulous-keyed-md5 | keyed-sha1
                           # | meticulous-keyed-sha1
        key_id: 1          # 0..255, the key sent
        secret: "..."      # simple: 1-16 octets; MD5: 1-16; SHA1: 1-20
        keys:              # optional, for key rollover: every key listed is accepted
          - {id: 2, secret: "..."}

``bfd: true`` is every default; ``bfd: false`` or ``null`` is no BFD. :func:`parse` returns a
:class:`BfdConfig` or raises :class:`BfdConfigError` naming the key (relative to the
section, e.g. ``auth.secret``) and why; :func:`problems` lists every problem instead of the
first. The config loader wraps these into its own errors with the file and the full path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .auth import Auth
from .packet import SIMPLE_PASSWORD_MAX, AuthType
from .session import MAX_INTERVAL, ONE_SECOND, SessionParams

MIN_INTERVAL_US = 10_000  # 10 ms: below that a Python daemon cannot keep time
DEFAULT_INTERVAL_US = 300_000
DEFAULT_MULTIPLIER = 3

AUTH_TYPES = {t.name_in_config: t for t in AuthType}

KEYS = (
    "min_tx",
    "min_rx",
    "multiplier",
    "idle_tx",
    "strict",
    "multihop",
    "min_ttl",
    "passive",
    "interface",
    "auth",
)
AUTH_KEYS = ("type", "key_id", "secret", "keys")


class BfdConfigError(ValueError):
    """A problem in a ``bfd:`` section: ``key`` is the path inside it ("" for the section)."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}" if key else reason)


@dataclass(frozen=True, slots=True)
class BfdConfig:
    """A parsed ``bfd:`` section. ``params`` is what the session runs with."""

    params: SessionParams
    strict: bool = False
    multihop: bool = False
    min_ttl: int | None = None
    interface: str | None = None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s)?\s*$")
_UNIT_US = {"us": 1, "µs": 1, "ms": 1000, "s": ONE_SECOND, None: 1000}


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def parse_interval(value: Any, key: str, minimum: int = MIN_INTERVAL_US) -> int:
    """``300``, ``"300ms"``, ``"0.3s"``, ``"300000us"`` -> 300000 (microseconds)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BfdConfigError(key, f"expected a duration such as 300ms, got {_describe(value)}")
    if isinstance(value, (int, float)):
        us = round(value * 1000)
    else:
        m = _DURATION.match(value)
        if not m:
            raise BfdConfigError(
                key, f"expected a duration such as 300ms, 0.3s or 300000us, got {value!r}"
            )
        us = round(float(m.group(1)) * _UNIT_US[m.group(2)])
    if us < minimum:
        raise BfdConfigError(key, f"{us / 1000:g} ms is below the minimum of {minimum / 1000:g} ms")
    if us > MAX_INTERVAL:
        raise BfdConfigError(
            key, f"{us / 1000:g} ms is above the maximum of {MAX_INTERVAL // 1000} ms"
        )
    return us


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise BfdConfigError(key, f"expected true or false, got {_describe(value)}")
    return value


def _int(value: Any, key: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BfdConfigError(key, f"expected an integer {lo}..{hi}, got {_describe(value)}")
    if not lo <= value <= hi:
        raise BfdConfigError(key, f"{value} is out of range ({lo}..{hi})")
    return value


def _unknown(mapping: dict, known: tuple[str, ...], prefix: str) -> None:
    for k in mapping:
        if k not in known:
            raise BfdConfigError(f"{prefix}{k}", f"unknown key (known: {', '.join(known)})")


def _secret(value: Any, key: str, atype: AuthType) -> bytes:
    if not isinstance(value, str) or not value:
        raise BfdConfigError(key, f"expected a non-empty string, got {_describe(value)}")
    data = value.encode()
    limit = SIMPLE_PASSWORD_MAX if atype == AuthType.SIMPLE else atype.digest_len
    if len(data) > limit:
        raise BfdConfigError(
            key, f"{len(data)} octets: a {atype.name_in_config} secret has at most {limit}"
        )
    return data


def parse_auth(value: Any) -> Auth | None:
    """The ``auth`` sub-section (None or false: no authentication)."""
    if value is None or value is False:
        return None
    if not isinstance(value, dict):
        raise BfdConfigError("auth", f"expected a mapping, got {_describe(value)}")
    _unknown(value, AUTH_KEYS, "auth.")
    if "type" not in value:
        raise BfdConfigError("auth.type", f"required: one of {', '.join(AUTH_TYPES)}")
    atype = AUTH_TYPES.get(value["type"]) if isinstance(value["type"], str) else None
    if atype is None:
        raise BfdConfigError(
            "auth.type", f"{_describe(value['type'])} is not one of {', '.join(AUTH_TYPES)}"
        )
    if "keys" in value and not isinstance(value["keys"], list | None):
        raise BfdConfigError("auth.keys", f"expected a list, got {_describe(value['keys'])}")
    keys: dict[int, bytes] = {}
    for i, item in enumerate(value.get("keys") or ()):
        where = f"auth.keys[{i}]"
        if not isinstance(item, dict):
            raise BfdConfigError(where, f"expected a mapping {{id, secret}}, got {_describe(item)}")
        _unknown(item, ("id", "secret"), f"{where}.")
        for required in ("id", "secret"):
            if required not in item:
                raise BfdConfigError(f"{where}.{required}", "required")
        kid = _int(item["id"], f"{where}.id", 0, 255)
        if kid in keys:
            raise BfdConfigError(f"{where}.id", f"key id {kid} is listed twice")
        keys[kid] = _secret(item["secret"], f"{where}.secret", atype)
    if "secret" in value:
        kid = _int(value.get("key_id", 1), "auth.key_id", 0, 255)
        secret = _secret(value["secret"], "auth.secret", atype)
        if kid in keys and keys[kid] != secret:
            raise BfdConfigError("auth.secret", f"differs from the secret of key {kid} in keys")
        keys[kid] = secret
        send = kid
    elif keys:
        if "key_id" in value:
            send = _int(value["key_id"], "auth.key_id", 0, 255)
            if send not in keys:
                raise BfdConfigError("auth.key_id", f"key {send} is not among auth.keys")
        else:
            send = next(iter(keys))
    else:
        raise BfdConfigError("auth.secret", "required (or auth.keys)")
    return Auth(atype, keys, send)


def parse(value: Any) -> BfdConfig | None:
    """A ``bfd:`` value -> :class:`BfdConfig` (None: BFD off). Raises BfdConfigError."""
    if value is None or value is False:
        return None
    if value is True:
        value = {}
    if not isinstance(value, dict):
        raise BfdConfigError("", f"expected a mapping, true or false, got {_describe(value)}")
    _unknown(value, KEYS, "")
    min_tx = parse_interval(value.get("min_tx", DEFAULT_INTERVAL_US / 1000), "min_tx")
    min_rx = parse_interval(value.get("min_rx", DEFAULT_INTERVAL_US / 1000), "min_rx")
    idle_tx = parse_interval(value.get("idle_tx", "1s"), "idle_tx", minimum=ONE_SECOND)
    multiplier = _int(value.get("multiplier", DEFAULT_MULTIPLIER), "multiplier", 1, 255)
    strict = _bool(value.get("strict", False), "strict")
    multihop = _bool(value.get("multihop", False), "multihop")
    passive = _bool(value.get("passive", False), "passive")
    min_ttl = value.get("min_ttl")
    if min_ttl is not None:
        min_ttl = _int(min_ttl, "min_ttl", 1, 255)
        if not multihop:
            raise BfdConfigError(
                "min_ttl", "only for multihop sessions (single hop always requires TTL 255)"
            )
    interface = value.get("interface")
    if interface is not None:
        if not isinstance(interface, str) or not interface or len(interface) > 15:
            raise BfdConfigError(
                "interface",
                f"expected an interface name (1-15 characters), got {_describe(interface)}",
            )
        if multihop:
            raise BfdConfigError("interface", "a multihop session is not bound to an interface")
    auth = parse_auth(value.get("auth"))
    params = SessionParams(
        min_tx=min_tx,
        min_rx=min_rx,
        multiplier=multiplier,
        idle_tx=idle_tx,
        passive=passive,
        auth=auth,
    )
    return BfdConfig(params, strict, multihop, min_ttl, interface)


def problems(value: Any) -> list[BfdConfigError]:
    """Every problem of a ``bfd:`` value, one per key (empty: valid)."""
    if not isinstance(value, dict):
        try:
            parse(value)
        except BfdConfigError as e:
            return [e]
        return []
    found: list[BfdConfigError] = []
    for k in value:
        # Each key checked with the others at their defaults (and multihop as given, which
        # min_ttl and interface depend on).
        probe = {k: value[k]}
        if k in ("min_ttl", "interface") and "multihop" in value:
            probe["multihop"] = value["multihop"]
        try:
            parse(probe)
        except BfdConfigError as e:
            if e.key != "multihop" or k == "multihop":
                found.append(e)
    return found


__all__ = [
    "AUTH_TYPES",
    "DEFAULT_INTERVAL_US",
    "DEFAULT_MULTIPLIER",
    "KEYS",
    "MIN_INTERVAL_US",
    "BfdConfig",
    "BfdConfigError",
    "parse",
    "parse_auth",
    "parse_interval",
    "problems",
]

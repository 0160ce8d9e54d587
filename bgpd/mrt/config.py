"""The ``mrt`` config section: checked here, in the style of :mod:`bgpd.config.checks`.

.. code-block:: yaml

    mrt:
      updates: /var/log/bgpd/updates.%Y%m%d.%H%M.mrt   # strftime pattern, UTC
      rotate: 15m              # a new file every 15 minutes (0: never)
      flush_interval: 1s       # longest time a record waits in memory
      buffer: 64MiB            # at most this much waits for the disk; beyond it, dropped

:func:`check_mrt` is a checker for the schema (raises :class:`~bgpd.config.errors.Invalid`
with the sub-key); :func:`parse_mrt` checks a section on its own and raises
:class:`~bgpd.config.errors.ConfigError` naming the file, the key path and the reason.
"""

import difflib
import re
from dataclasses import dataclass
from typing import Any

from bgpd.config.checks import describe
from bgpd.config.errors import ConfigError, Invalid

from .log import file_name

KEYS = ("updates", "rotate", "flush_interval", "buffer")


@dataclass(frozen=True, kw_only=True)
class MrtConfig:
    updates: str | None = None  # file pattern of the update log; None: no update log
    rotate: float = 900.0  # seconds; 0: one file
    flush_interval: float = 1.0
    buffer: int = 64 * 1024 * 1024


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|kB|MB|GB|K|M|G)?\s*$")
_SIZE_UNITS = {
    None: 1,
    "B": 1,
    "K": 1024,
    "KiB": 1024,
    "kB": 1000,
    "M": 1024**2,
    "MiB": 1024**2,
    "MB": 1000**2,
    "G": 1024**3,
    "GiB": 1024**3,
    "GB": 1000**3,
}


def duration(lo: float, hi: float, zero_ok: bool = False):
    """Seconds from ``90``, ``"30s"``, ``"15m"``, ``"2h"``, ``"500ms"``."""

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise Invalid(f"expected a duration such as 30s, 15m or 1h, got {describe(value)}")
        if isinstance(value, str):
            m = _DURATION.match(value)
            if not m:
                raise Invalid(f"{value!r} is not a duration (write 30s, 15m, 1h or seconds)")
            seconds = float(m.group(1)) * _UNITS[m.group(2)]
        else:
            seconds = float(value)
        if seconds == 0 and zero_ok:
            return 0.0
        if not lo <= seconds <= hi:
            allowed = f"0 or {_fmt(lo)}..{_fmt(hi)}" if zero_ok else f"{_fmt(lo)}..{_fmt(hi)}"
            raise Invalid(f"{_fmt(seconds)} is out of range ({allowed})")
        return seconds

    return check


def size(lo: int, hi: int):
    """Octets from ``1048576``, ``"64MiB"``, ``"512KiB"``."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise Invalid(f"expected a size such as 16MiB, got {describe(value)}")
        if isinstance(value, str):
            m = _SIZE.match(value)
            if not m:
                raise Invalid(f"{value!r} is not a size (write 512KiB, 64MiB, 1GiB or octets)")
            n = int(m.group(1)) * _SIZE_UNITS[m.group(2)]
        else:
            n = value
        if not lo <= n <= hi:
            raise Invalid(f"{n} octets is out of range ({lo}..{hi})")
        return n

    return check


def unknown_key(name: Any, known) -> str:
    if not isinstance(name, str):
        return f"keys must be strings, got {describe(name)}"
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if close:
        return f"unknown key (did you mean '{close[0]}'?)"
    return f"unknown key (known keys: {', '.join(known)})"


def _fmt(seconds: float) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{int(seconds // 86400)}d"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds}s"


def _pattern(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(
            f"expected a file name pattern such as updates.%Y%m%d.%H%M, got {describe(value)}"
        )
    if value.endswith("/"):
        raise Invalid(f"{value!r} names a directory: add a file name pattern")
    try:
        file_name(value, 0)
    except ValueError as e:
        raise Invalid(f"{value!r} is not a valid strftime pattern: {e}")
    return value


def check_mrt(value: Any) -> MrtConfig | None:
    """The checker of the ``mrt`` key: a mapping (or null for no MRT at all)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid(
            f"expected a mapping such as {{updates: FILE-PATTERN, rotate: 15m}}, got {describe(value)}"
        )
    for k in value:
        if k not in KEYS:
            raise Invalid(unknown_key(k, KEYS), str(k))
    out: dict = {}
    checks = (
        ("updates", lambda v: None if v is None else _pattern(v)),
        ("rotate", duration(60, 7 * 86400, zero_ok=True)),
        ("flush_interval", duration(0.01, 60)),
        ("buffer", size(64 * 1024, 1 << 34)),
    )
    for k, check in checks:
        if k in value:
            try:
                out[k] = check(value[k])
            except Invalid as e:
                raise Invalid(e.reason, k) from None
    cfg = MrtConfig(**out)
    if cfg.updates is not None and cfg.rotate > 0:
        a = file_name(cfg.updates, 1_700_000_000 - 1_700_000_000 % cfg.rotate)
        b = file_name(cfg.updates, 1_700_000_000 - 1_700_000_000 % cfg.rotate + cfg.rotate)
        if a == b:
            raise Invalid(
                f"every {_fmt(cfg.rotate)} period would get the same file name {a!r}: "
                "put time fields in the pattern (%Y%m%d.%H%M) or set rotate: 0",
                "updates",
            )
    return cfg


def parse_mrt(value: Any, file: str = "<config>", key: str = "mrt") -> MrtConfig | None:
    """:func:`check_mrt` for a section read on its own; raises ConfigError(file, key path)."""
    try:
        return check_mrt(value)
    except Invalid as e:
        path = key if not e.key else f"{key}.{e.key}"
        raise ConfigError(file, path, e.reason) from None


__all__ = ["KEYS", "MrtConfig", "check_mrt", "duration", "parse_mrt", "size"]

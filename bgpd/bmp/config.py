"""The ``bmp`` config section: a list of monitoring stations.

.. code-block:: yaml

    bmp:
      - address: 192.0.2.50        # the collector (IPv4 or IPv6)
        port: 1790
        local_address: 192.0.2.1   # optional source address
        retry: 30s                 # first reconnection delay, doubled up to retry_max
        retry_max: 12m
        buffer: 16MiB              # queued output beyond which the stream is dropped
        stats_interval: 60s        # Statistics Reports (0: none)
        adj_rib_in: true           # pre-policy Adj-RIB-In (the UPDATEs as received)
        loc_rib: true              # RFC 9069 Loc-RIB
        adj_rib_out: false         # RFC 8671 post-policy Adj-RIB-Out
        sndbuf: 256KiB             # SO_SNDBUF of the connection (default: the kernel's)

:func:`check_bmp` is the schema checker (raises :class:`~bgpd.config.errors.Invalid` with the
sub-key, e.g. ``[1].port``); :func:`parse_bmp` checks a section on its own and raises
:class:`~bgpd.config.errors.ConfigError` naming the file, ``bmp[1].port`` and the reason.
"""

from typing import Any

from bgpd.config import checks
from bgpd.config.checks import describe
from bgpd.config.errors import ConfigError, Invalid
from bgpd.mrt.config import duration, size, unknown_key

from .station import StationConfig

_CHECKS = {
    "address": checks.ip_address,
    "port": checks.integer(1, 65535),
    "local_address": checks.optional(checks.ip_address),
    "retry": duration(0.1, 3600),
    "retry_max": duration(0.1, 86400),
    "buffer": size(64 * 1024, 1 << 32),
    "connect_timeout": duration(0.1, 300),
    "stats_interval": duration(1, 86400, zero_ok=True),
    "adj_rib_in": checks.boolean,
    "loc_rib": checks.boolean,
    "adj_rib_out": checks.boolean,
    "sndbuf": checks.optional(size(4096, 1 << 28)),
}
KEYS = tuple(_CHECKS)


def _station(value: Any) -> StationConfig:
    if not isinstance(value, dict):
        raise Invalid(f"expected a mapping such as {{address: A, port: P}}, got {describe(value)}")
    for k in value:
        if k not in _CHECKS:
            raise Invalid(unknown_key(k, KEYS), str(k))
    if "address" not in value:
        raise Invalid("required key is missing", "address")
    out = {}
    for k, check in _CHECKS.items():
        if k in value:
            try:
                out[k] = check(value[k])
            except Invalid as e:
                raise Invalid(e.reason, k if not e.key else f"{k}.{e.key}") from None
    cfg = StationConfig(**out)
    if cfg.retry_max < cfg.retry:
        raise Invalid(
            f"retry_max ({cfg.retry_max:g}s) is shorter than retry ({cfg.retry:g}s)", "retry_max"
        )
    if cfg.local_address is not None and (":" in cfg.local_address) != (":" in cfg.address):
        raise Invalid(
            f"{cfg.local_address} and the station address {cfg.address} are not of one family",
            "local_address",
        )
    if not (cfg.adj_rib_in or cfg.loc_rib or cfg.adj_rib_out):
        raise Invalid("monitors nothing: enable adj_rib_in, loc_rib or adj_rib_out", "adj_rib_in")
    return cfg


def check_bmp(value: Any) -> tuple[StationConfig, ...]:
    """The checker of the ``bmp`` key: a list of stations (null or [] for none)."""
    if value is None:
        return ()
    if isinstance(value, dict):
        value = [value]  # one station may be written without the list
    if not isinstance(value, list):
        raise Invalid(f"expected a list of stations [{{address, port}}], got {describe(value)}")
    out = []
    seen: dict = {}
    for i, item in enumerate(value):
        try:
            st = _station(item)
        except Invalid as e:
            raise Invalid(e.reason, f"[{i}]" + (f".{e.key}" if e.key else "")) from None
        where = (st.address, st.port)
        if where in seen:
            raise Invalid(f"{st.name} is listed twice (also [{seen[where]}])", f"[{i}]")
        seen[where] = i
        out.append(st)
    return tuple(out)


def parse_bmp(value: Any, file: str = "<config>", key: str = "bmp") -> tuple[StationConfig, ...]:
    """:func:`check_bmp` on its own; raises ConfigError(file, ``bmp[i].key``, reason)."""
    try:
        return check_bmp(value)
    except Invalid as e:
        path = key + (e.key if e.key and e.key.startswith("[") else f".{e.key}" if e.key else "")
        raise ConfigError(file, path, e.reason) from None


__all__ = ["KEYS", "check_bmp", "parse_bmp"]

"""The config schema, loading, validation, and the diff used by live reload.

``load(path)`` reads a YAML file, ``parse(data, file)`` checks what YAML produced; both return
a frozen :class:`Config` or raise :class:`ConfigError` naming the file, the key path
(``neighbors[2].hold_time``) and the reason. ``diff(old, new)`` says what a reload changes.
"""

from .diff import SESSION_KEYS, ConfigDiff, NeighborChange, diff
from .errors import ConfigError
from .loader import load, loads, parse
from .schema import DEFAULT_CONTROL_SOCKET, AddPath, Config, Listen, Neighbor

__all__ = [
    "DEFAULT_CONTROL_SOCKET",
    "SESSION_KEYS",
    "AddPath",
    "Config",
    "ConfigDiff",
    "ConfigError",
    "Listen",
    "Neighbor",
    "NeighborChange",
    "diff",
    "load",
    "loads",
    "parse",
]

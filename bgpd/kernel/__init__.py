"""The kernel: host routes into the Loc-RIB, best routes into the FIB (netlink).

Layers (docs/kernel.md): :mod:`.netlink` is the only module that talks to the kernel (raw
rtnetlink, messages built and parsed with :mod:`struct`); :mod:`.state` and
:mod:`.translate` are pure (host state and next-hop resolution; RIB route to kernel route);
:mod:`.fib` (the FIB writer) and :mod:`.learn` (host routes, the netlink watcher) are the
asyncio parts; :mod:`.service` puts them together for the speaker.
"""

from .fib import FibWriter
from .learn import (
    HostRoutes,
    HostWatcher,
    InterfaceFilter,
    LocRibSink,
    PrefixFilter,
    RouteSink,
    StaticRoute,
)
from .routes import FibSettings, HostRoute, HostSource, KernelRoute, Unresolved
from .service import Kernel, KernelSettings
from .state import HostState
from .translate import translate

__all__ = [
    "FibSettings",
    "FibWriter",
    "HostRoute",
    "HostRoutes",
    "HostSource",
    "HostState",
    "HostWatcher",
    "InterfaceFilter",
    "Kernel",
    "KernelRoute",
    "KernelSettings",
    "LocRibSink",
    "PrefixFilter",
    "RouteSink",
    "StaticRoute",
    "Unresolved",
    "translate",
]

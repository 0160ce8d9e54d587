"""The kernel: host routes into the Loc-RIB, best routes into the FIB (netlink).

Layers (docs/kernel.md): :mod:`.netlink` is the only module that talks to the kernel (raw
rtnetlink, messages built and parsed with :mod:`struct`); :mod:`.state` and
:mod:`.translate` are pure (host state and next-hop resolution; RIB route to kernel route);
:mod:`.fib` (the FIB writer) and :mod:`.learn` (host routes, the netlink watcher) are the
asyncio parts; :mod:`.service` puts them together for the speaker; :mod:`.settings` holds
what the config asks of them.

The names below are imported from their modules when first used, so that importing
``bgpd.kernel.settings`` does not load netlink and the rest.
"""

import importlib

# eager: the name is also a submodule's, which an import of that submodule would bind here
from .translate import translate

# name -> the module of this package that defines it, imported on first use (PEP 562): a
# daemon whose config asks nothing of the kernel reads only .settings (bgpd/speaker).
_WHERE = {
    "FibSettings": ".routes",
    "FibWriter": ".fib",
    "HostRoute": ".routes",
    "HostRoutes": ".learn",
    "HostSource": ".routes",
    "HostState": ".state",
    "HostWatcher": ".learn",
    "InterfaceFilter": ".learn",
    "Kernel": ".service",
    "KernelRoute": ".routes",
    "KernelSettings": ".settings",
    "LocRibSink": ".learn",
    "PrefixFilter": ".learn",
    "RouteSink": ".learn",
    "StaticRoute": ".settings",
    "Unresolved": ".routes",
}


def __getattr__(name: str):
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted({*globals(), *_WHERE})


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

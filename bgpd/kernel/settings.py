"""What the kernel side is asked to do, from the config: :class:`KernelSettings` and
:class:`StaticRoute`.

Apart from :mod:`.service` so that the daemon can tell whether the config asks for anything
of the kernel (:meth:`KernelSettings.from_config`) without importing the rest of this package
(netlink, ctypes): a daemon that neither installs nor learns routes never loads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class StaticRoute(NamedTuple):
    """A configured static route: ``type`` is unicast (via a gateway and/or on an
    interface), blackhole, unreachable or prohibit."""

    prefix: str
    type: str = "unicast"
    via: str | None = None
    interface: str | None = None


@dataclass(frozen=True)
class KernelSettings:
    """What the kernel side does. ``fib``: the ``kernel:`` section was given (install and
    track the host's state); ``learn_prefixes`` / ``interfaces``: learn kernel / connected
    routes (None: off); ``static``: static routes; ``netns``: run against another network
    namespace (tests)."""

    fib: bool = False
    table: int = 254
    protocol: int = 186
    metric: int = 0
    install: bool = True
    persist: bool = True
    sweep_timeout: float = 60.0
    learn_prefixes: tuple | None = None
    interfaces: tuple | None = None
    static: tuple = field(default_factory=tuple)
    netns: str | None = None

    @property
    def netlink(self) -> bool:
        return self.fib or self.learn_prefixes is not None or self.interfaces is not None

    @classmethod
    def from_config(cls, cfg, netns: str | None = None) -> KernelSettings | None:
        """From the parsed config (``cfg.kernel``, ``cfg.host_routes``); None when neither
        asks for anything: bgpd then never opens a netlink socket."""
        k = getattr(cfg, "kernel", None)
        h = getattr(cfg, "host_routes", None)
        kw: dict = {"netns": netns}
        if k is not None:
            kw.update(
                fib=True,
                table=k.table,
                protocol=k.protocol,
                metric=k.metric,
                install=k.install,
                persist=k.persist,
                sweep_timeout=float(k.sweep_timeout),
            )
        if h is not None:
            if h.kernel is not None and h.kernel.learn:
                kw["learn_prefixes"] = tuple(h.kernel.prefixes)
            if h.connected is not None:
                kw["interfaces"] = tuple(h.connected.interfaces)
            kw["static"] = tuple(
                StaticRoute(s.prefix, s.type, s.via, s.interface) for s in h.static
            )
        s = cls(**kw)
        if not s.netlink and not s.static:
            return None
        return s

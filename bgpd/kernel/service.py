"""The kernel side of a running bgpd, as one object the speaker creates, asks and closes.

:class:`Kernel` builds, from the ``kernel:`` and ``host_routes:`` config sections
(:class:`KernelSettings`), the host sources (:class:`~.learn.HostRoutes`), the netlink
watcher that feeds them (:class:`~.learn.HostWatcher`) and the FIB writer
(:class:`~.fib.FibWriter`). When the initial convergence is done (End-of-RIB from every
neighbor expected up, or ``sweep_timeout`` seconds after start: the route engine decides,
bgpd/rde/graceful.py), the daemon calls :meth:`Kernel.converged` and the writer sweeps what a
previous run left installed and nobody confirmed.
"""

from __future__ import annotations

import structlog

from .fib import FibWriter
from .learn import (
    HostRoutes,
    HostWatcher,
    InterfaceFilter,
    LocRibSink,
    PrefixFilter,
    RouteSink,
)
from .netlink import RouteSocket
from .routes import FibSettings, HostSource
from .settings import KernelSettings
from .state import HostState

log = structlog.get_logger("bgpd.kernel")


class Kernel:
    """Host routes in, best routes out; see the module docstring."""

    def __init__(
        self,
        locs: dict,
        settings: KernelSettings,
        *,
        routes: RouteSink | None = None,
        export=None,
        local_as: int = 0,
    ) -> None:
        """``locs``: the Loc-RIBs the FIB writer installs from (as their listener);
        ``routes``: where host routes go (default: straight into ``locs``); ``export``: the
        FIB writer's kernel export filter (:class:`~.fib.FibWriter`)."""
        self.settings = settings
        fs = FibSettings(settings.table, settings.protocol, settings.metric)
        self.state = HostState(settings.table)
        self.host = HostRoutes(
            routes if routes is not None else LocRibSink(locs),
            state=self.state,
            settings=fs,
            kernel_prefixes=(
                PrefixFilter(settings.learn_prefixes)
                if settings.learn_prefixes is not None
                else None
            ),
            interfaces=(
                InterfaceFilter(settings.interfaces) if settings.interfaces is not None else None
            ),
            static=settings.static,
            local_as=local_as,
        )
        self.locs = locs
        self.export = export
        self.fib: FibWriter | None = None
        self.watcher: HostWatcher | None = None
        self.converged_reason: str | None = None

    @property
    def sources(self) -> tuple[HostSource, ...]:
        return self.host.sources

    async def start(self) -> None:
        s = self.settings
        channel = None
        try:
            if s.fib and s.install:
                channel = RouteSocket(s.netns)
                self.fib = FibWriter(
                    self.locs,
                    FibSettings(s.table, s.protocol, s.metric),
                    self.state,
                    channel,
                    persist=s.persist,
                    export=self.export,
                )
                self.fib.on_overwrite = self.host.overwritten
                self.host.fib = self.fib
            if s.netlink:
                self.watcher = HostWatcher(
                    self.host, s.netns, ignore_pid=channel.pid if channel is not None else 0
                )
                await self.watcher.start()
            self.host.load_static()
            if self.fib is not None:
                await self.fib.start()
        except BaseException:
            await self.close()
            raise
        log.info(
            "kernel started",
            install=self.fib is not None,
            table=s.table,
            protocol=s.protocol,
            learn_kernel=s.learn_prefixes is not None,
            connected=s.interfaces is not None,
            static=len(s.static),
        )

    def converged(self, reason: str = "") -> None:
        """The initial convergence is done: sweep what a previous run left and nobody
        confirmed."""
        if self.converged_reason is not None:
            return
        self.converged_reason = reason or "done"
        if self.fib is not None:
            log.info("kernel: initial convergence", reason=self.converged_reason)
            self.fib.initial_convergence_done()

    def reconfigure(self, settings: KernelSettings) -> list[str]:
        """A reload: apply new host-route settings (static routes, what is learned from the
        kernel and from interfaces) at once. Returns what cannot change without a restart
        (FIB table, protocol, metric, installing, persisting; learning from netlink when
        this run started without it), each as ``"key: why"``; the rest is applied."""
        old = self.settings
        need = []
        for key in ("fib", "table", "protocol", "metric", "install", "persist"):
            if getattr(old, key) != getattr(settings, key):
                need.append(f"kernel.{key}: the FIB writer is set up at start")
        if settings.netlink and self.watcher is None:
            need.append("host_routes: learning from the kernel starts with the daemon")
        if need:
            return need
        self.settings = settings
        self.host.reconfigure(
            kernel_prefixes=(
                PrefixFilter(settings.learn_prefixes)
                if settings.learn_prefixes is not None
                else None
            ),
            interfaces=(
                InterfaceFilter(settings.interfaces) if settings.interfaces is not None else None
            ),
            static=settings.static,
        )
        return []

    def status(self, family, prefix: bytes) -> str | None:
        """For ``show routes``: installed / adopted / why not, or None."""
        return self.fib.status(family, prefix) if self.fib is not None else None

    def interface_of(self, source, family, prefix: bytes) -> str | None:
        return self.host.interface_of(source, family, prefix)

    def info(self) -> dict:
        s = self.settings
        out = {
            "table": s.table,
            "protocol": s.protocol,
            "install": self.fib is not None,
            "converged": self.converged_reason,
            "interfaces": len(self.state.links),
            "learned": {src.kind: sum(len(r) for r in src.routes.values()) for src in self.sources},
        }
        if self.fib is not None:
            out["fib"] = {"routes": self.fib.count(), **self.fib.stats}
        if self.watcher is not None:
            out["netlink_resyncs"] = self.watcher.resyncs
        return out

    async def close(self) -> None:
        if self.watcher is not None:
            await self.watcher.close()
            self.watcher = None
        if self.fib is not None:
            await self.fib.close()
            self.fib = None

"""Running one CLI command: parse it, answer it from a snapshot, or ask the daemon.

:class:`BirdCli` is what the daemon instantiates, once per control socket (``bird.ctl`` and
``bird6.ctl`` each get their own, with their own snapshot function). Read-only commands are
answered from ``snapshot()``, taken once per command. Commands that change something
(``configure``, ``enable``/``disable``/``restart``/``reload``, ``down``, ``graceful
restart``) call the
:class:`ControlHandler` the daemon provides; its methods may be plain functions or
coroutines.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from .commands import (
    Configure,
    Down,
    GracefulRestart,
    ProtoCommand,
    Restrict,
    ShowMemory,
    ShowProtocols,
    ShowRoute,
    ShowStatus,
    Unsupported,
    parse_command,
)
from .lexer import CliError
from .protocol import Line, TooLong
from .show import (
    UP_STATES,
    RouteQuery,
    select_protocols,
    show_memory,
    show_protocols,
    show_route,
    show_status,
)
from .snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class ConfigureResult:
    """What the daemon answers to ``configure [soft|check] ["file"]``."""

    path: str  # the file read: "Reading configuration from PATH"
    error: str | None = None  # "file:line:col message" (or "PATH: strerror"): 8002
    outcome: str = "done"  # done | progress | queued | unqueued | nothing | shutdown


CONFIGURE_OUTCOMES = {
    "done": (3, "Reconfigured"),
    "progress": (4, "Reconfiguration in progress"),
    "queued": (5, "Reconfiguration already in progress, queueing new config"),
    "unqueued": (17, "Reconfiguration already in progress, removing queued config"),
    "shutdown": (6, "Reconfiguration ignored, shutting down"),
    "nothing": (19, "Nothing to do"),
}


class ControlHandler(Protocol):
    """The daemon's side of the mutating commands (each may return an awaitable)."""

    def configure(self, request: Configure) -> ConfigureResult | Any:
        """Read ``request.path`` (None: the -c file); ``request.check``: parse only.
        Otherwise apply it (``request.soft``: keep routes, re-run no filters)."""

    def protocol_command(self, action: str, name: str, message: str | None) -> bool | Any:
        """``action`` one of enable, disable, restart, reload, "reload in", "reload out",
        for protocol ``name``; called only when it changes something (not for an already
        disabled protocol, say). Returns False only when a reload failed."""

    def shutdown(self) -> None | Any:
        """``down``: called after ``0007 Shutdown requested`` has been sent."""

    def graceful_restart(self) -> None | Any:
        """``graceful restart`` (BIRD 2.0's command): called after ``0025 Graceful restart
        requested`` has been sent; stop without ending the sessions with a NOTIFICATION."""


@dataclass
class Session:
    """Per-connection state the commands see."""

    restricted: bool = False  # after ``restrict``: 8007 for mutating commands
    shutdown_requested: bool = False  # ``down`` answered: call handler.shutdown() after
    graceful: bool = False  # ... ``graceful restart``: handler.graceful_restart() instead


async def _maybe_await(v):
    if inspect.isawaitable(v):
        return await v
    return v


class BirdCli:
    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        handler: ControlHandler | None = None,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        self.snapshot = snapshot
        self.handler = handler
        self.clock = clock

    async def execute(self, line: str | TooLong, session: Session) -> list[Line]:
        """The reply to one command line."""
        if isinstance(line, TooLong):
            return [(9000, "Command too long")]
        snap = self.snapshot()
        try:
            cmd = parse_command(
                line,
                protocols=[p.name for p in snap.protocols],
                tables=snap.tables,
                ipv6=snap.ipv6,
            )
        except CliError as e:
            return [(e.code, e.text)]
        now = self.clock()
        if isinstance(cmd, ShowStatus):
            return show_status(snap, now)
        if isinstance(cmd, ShowMemory):
            return show_memory(snap.memory)
        if isinstance(cmd, ShowProtocols):
            return show_protocols(snap, now, cmd.verbose, cmd.name, cmd.pattern)
        if isinstance(cmd, ShowRoute):
            q = RouteQuery(
                prefix=cmd.prefix,
                show_for=cmd.show_for,
                table=cmd.table or "master",
                where=cmd.where,
                verbose=cmd.verbose,
                primary_only=cmd.primary_only,
                filtered=cmd.filtered,
                export_mode=cmd.export_mode,
                export_protocol=cmd.export_protocol,
                protocol=cmd.protocol,
                stats=cmd.stats,
            )
            return show_route(snap, now, q)
        if isinstance(cmd, Restrict):
            session.restricted = True
            return [(16, "Access restricted")]
        if isinstance(cmd, Unsupported):
            return [(9001, f"{cmd.command}: not supported by bgpd")]
        if isinstance(cmd, Configure):
            return await self._configure(cmd, session)
        if isinstance(cmd, ProtoCommand):
            return await self._proto_command(cmd, snap, session)
        if isinstance(cmd, Down):
            if session.restricted or self.handler is None:
                return [(8007, "Access denied")]
            session.shutdown_requested = True
            return [(7, "Shutdown requested")]
        if isinstance(cmd, GracefulRestart):  # BIRD 2.0's cmd_graceful_restart
            if session.restricted or self.handler is None:
                return [(8007, "Access denied")]
            session.shutdown_requested = session.graceful = True
            return [(25, "Graceful restart requested")]
        raise AssertionError(cmd)  # pragma: no cover

    async def _configure(self, cmd: Configure, session: Session) -> list[Line]:
        if self.handler is None or (session.restricted and not cmd.check):
            return [(8007, "Access denied")]
        res: ConfigureResult = await _maybe_await(self.handler.configure(cmd))
        lines: list[Line] = [(-2, f"Reading configuration from {res.path}")]
        if res.error is not None:
            lines.append((8002, res.error))
        elif cmd.check:
            lines.append((20, "Configuration OK"))
        else:
            lines.append(CONFIGURE_OUTCOMES.get(res.outcome, (3, "Reconfigured")))
        return lines

    async def _proto_command(self, cmd: ProtoCommand, snap: Snapshot, session) -> list[Line]:
        if self.handler is None or session.restricted:
            return [(8007, "Access denied")]
        sel = select_protocols(snap, cmd.name, cmd.pattern)
        if isinstance(sel, tuple):
            return [sel]
        lines: list[Line] = []
        for p in sel:
            action = cmd.action
            if action == "disable":
                if p.disabled:
                    lines.append((-8, f"{p.name}: already disabled"))
                    continue
                await _maybe_await(self.handler.protocol_command(action, p.name, cmd.message))
                lines.append((-9, f"{p.name}: disabled"))
            elif action == "enable":
                if not p.disabled:
                    lines.append((-10, f"{p.name}: already enabled"))
                    continue
                await _maybe_await(self.handler.protocol_command(action, p.name, cmd.message))
                lines.append((-11, f"{p.name}: enabled"))
            elif action == "restart":
                if p.disabled:
                    lines.append((-8, f"{p.name}: already disabled"))
                    continue
                await _maybe_await(self.handler.protocol_command(action, p.name, cmd.message))
                lines.append((-12, f"{p.name}: restarted"))
            else:  # reload, reload in, reload out
                if p.disabled:
                    lines.append((-8, f"{p.name}: already disabled"))
                    continue
                if p.state not in UP_STATES:
                    continue  # "If the protocol in not UP, it has no routes"
                ok = await _maybe_await(self.handler.protocol_command(action, p.name, None))
                if ok is False:
                    lines.append((-8006, f"{p.name}: reload failed"))
                else:
                    lines.append((-15, f"{p.name}: reloading"))
        if cmd.name is None and not sel:
            return [(8003, "No protocols match")]
        lines.append((0, ""))
        return lines

"""The daemon (was ``bgpd/speaker.py``): a thin asyncio binding of the route engine.

- :mod:`.daemon`: :class:`Speaker`, the composition root and session handler;
- :mod:`.neighbors`: neighbors at run time (configured and dynamic), listeners;
- :mod:`.control`: the control commands as a table; :mod:`.status`: snapshots, health;
- :mod:`.reload`: live reload; :mod:`.restart`: whether a start is a graceful restart.
"""

import asyncio
import contextlib
import os
import signal
import socket

import structlog

from bgpd.log import configure_logging

from .daemon import Speaker
from .restart import restart_marker_path, write_restart_marker

log = structlog.get_logger("bgpd")

__all__ = ["Speaker", "restart_marker_path", "run", "write_restart_marker"]


async def _main(
    config,
    config_path,
    ready: asyncio.Event | None = None,
    restart: bool = False,
    bird=None,
) -> int:
    loop = asyncio.get_running_loop()
    speaker = Speaker(config, config_path, loop, restart=restart, bird=bird)
    try:
        await speaker.start()
    except OSError as e:
        log.error("cannot start", error=str(e))
        await speaker.stop(marker=False)
        return 1
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, speaker.stopping.set)
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, speaker.reload)
    if ready is not None:
        ready.set()
    sd_notify("READY=1")
    await speaker.stopping.wait()
    sd_notify("STOPPING=1")
    await speaker.stop()
    return 0


def sd_notify(message: str) -> None:
    """systemd's notify protocol over $NOTIFY_SOCKET, without a dependency."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(path)
            s.sendall(message.encode())
    except OSError as e:
        log.warning("sd_notify failed", error=str(e))


def run(
    config,
    config_path: str | None = None,
    log_level: str = "info",
    restart: bool = False,
    bird=None,
) -> int:
    """Run the daemon until SIGTERM/SIGINT; returns the exit status. ``restart``: this start
    is a graceful restart whatever the restart marker and the kernel say (``-R``).
    ``bird``: a :class:`~.birdmode.BirdSetup`: run on a BIRD configuration (``config`` is
    its translation)."""
    configure_logging(log_level)
    return asyncio.run(_main(config, config_path, restart=restart, bird=bird))

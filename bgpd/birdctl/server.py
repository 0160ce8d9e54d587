"""The asyncio binding of the BIRD control socket (sysdep/unix/main.c cli_init_unix).

Start: refuse when another daemon answers on the path (BIRD's "I found another BIRD
running."), unlink the old file, bind, ``chmod 0660`` (and chown to ``-u``/``-g`` when
given). Close: stop listening, drop the clients, unlink the file if it is still ours.

Each connection gets a :class:`~.protocol.CliConnection` and a :class:`~.engine.Session`;
commands run one after another in the order received, each reply written (and drained)
before the next command runs, as BIRD does.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import socket

import structlog

from .engine import BirdCli, Session
from .protocol import CliConnection
from .snapshot import BIRD_VERSION

log = structlog.get_logger("bgpd.birdctl")

SOCKET_MODE = 0o660
READ_SIZE = 4096


class ControlSocketInUse(RuntimeError):
    """Another daemon listens on the control socket path."""


def socket_in_use(path: str) -> bool:
    """BIRD's test_old_bird: does something accept connections at ``path``?"""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(path)
        except OSError:
            return False
        return True


class BirdControlServer:
    def __init__(
        self,
        path: str,
        cli: BirdCli,
        version: str = BIRD_VERSION,
        uid: int | None = None,
        gid: int | None = None,
    ) -> None:
        self.path = str(path)
        self.cli = cli
        self.version = version
        self.uid = uid
        self.gid = gid
        self._server: asyncio.AbstractServer | None = None
        self._inode: int | None = None
        self._tasks: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        # Connections are accepted at once but greeted only when the daemon is ready: BIRD
        # opens its socket before it starts the protocols, and its one event loop answers
        # nobody until they have started (so no client sees a half-started daemon).
        self._ready = asyncio.Event()
        self._ready.set()

    def hold(self) -> None:
        """Greet no connection until :meth:`ready` (the daemon is starting)."""
        self._ready.clear()

    def ready(self) -> None:
        self._ready.set()

    async def start(self) -> None:
        if socket_in_use(self.path):
            raise ControlSocketInUse("I found another BIRD running.")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=self.path)
        except OSError as e:
            raise ControlSocketInUse(f"Cannot create control socket {self.path}: {e.strerror}")
        if self.uid is not None or self.gid is not None:
            os.chown(
                self.path,
                -1 if self.uid is None else self.uid,
                -1 if self.gid is None else self.gid,
            )
        os.chmod(self.path, SOCKET_MODE)
        self._inode = os.stat(self.path).st_ino
        log.info("BIRD control socket listening", path=self.path)

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for w in list(self._writers):
            w.close()
        for t in list(self._tasks):
            t.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5)
        with contextlib.suppress(FileNotFoundError):
            if os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)

    async def __aenter__(self) -> BirdControlServer:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        conn = CliConnection(self.version)
        session = Session()
        try:
            await self._ready.wait()
            writer.write(conn.data_to_send())
            await writer.drain()
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    break
                conn.receive_data(data)
                while (line := conn.next_command()) is not None:
                    try:
                        reply = await self.cli.execute(line, session)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("BIRD CLI command failed", command=str(line)[:200])
                        reply = [(9001, "internal error")]
                    conn.send_reply(reply)
                    writer.write(conn.data_to_send())
                    await writer.drain()
                    if session.shutdown_requested:
                        await self._shutdown(session.graceful)
                        return
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    async def _shutdown(self, graceful: bool = False) -> None:
        handler = self.cli.handler
        if handler is None:
            return
        res = handler.graceful_restart() if graceful else handler.shutdown()
        if inspect.isawaitable(res):
            await res

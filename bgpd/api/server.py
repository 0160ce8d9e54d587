"""The control socket: newline-delimited JSON over a Unix stream socket.

Each line a client sends is one request ``{"command": "show_neighbors", "args": {...}}``; each
reply is one line, ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``. A
connection may carry any number of requests; they are answered in order.

The server knows no command: it hands ``(command, args)`` to ``dispatch``, which returns the
result (a JSON-serialisable dict) or an awaitable of it. ``dispatch`` raises
:class:`UnknownCommand` for a command it does not have and :class:`CommandError` for a request
it refuses (the message goes to the client as is); any other exception is logged with its
traceback and answered as an internal error. Nothing a client sends can stop the server.
"""

import asyncio
import contextlib
import inspect
import json
import os
import socket
import stat
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

log = structlog.get_logger("bgpd.api")

Dispatch = Callable[[str, dict], "dict | Awaitable[dict]"]
MAX_REQUEST = 1 << 20  # octets in one request line
SOCKET_MODE = 0o660


async def stop_serving(server: asyncio.Server, writers) -> None:
    """Stop ``server`` listening, close its clients' ``writers`` and wait (5 s at most) for
    it to be closed (the control socket's and the metrics endpoint's ``close``)."""
    server.close()
    for writer in list(writers):
        writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.wait_closed(), 5)


class CommandError(Exception):
    """A request the daemon refuses (no such neighbor, bad argument): its text is the reply."""


class UnknownCommand(CommandError):
    def __init__(self, command: str, known=()) -> None:
        text = f"unknown command {command!r}"
        if known:
            text += f" (known: {', '.join(sorted(known))})"
        super().__init__(text)


class ControlSocketInUse(RuntimeError):
    """Another process is listening on the control socket path."""


class Dispatcher:
    """A ``dispatch`` built from a ``{command: handler(**args)}`` table.

    A handler takes the request's args as keyword arguments and returns the result or an
    awaitable of it; args it does not accept are a :class:`CommandError`.
    """

    def __init__(self, handlers: dict[str, Callable[..., Any]]) -> None:
        self.handlers = dict(handlers)
        # computed once: inspect.signature costs more than most commands (route_add)
        self.signatures = {name: inspect.signature(h) for name, h in self.handlers.items()}

    def __call__(self, command: str, args: dict) -> Any:
        handler = self.handlers.get(command)
        if handler is None:
            raise UnknownCommand(command, self.handlers)
        try:
            (self.signatures.get(command) or inspect.signature(handler)).bind(**args)
        except TypeError as e:
            raise CommandError(f"{command}: {e}")
        return handler(**args)


def _socket_in_use(path: str) -> bool:
    """Whether a process accepts connections on the Unix socket at ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except OSError:
            return True  # permission denied, timeout: somebody's socket; do not take it over
        return True


class ControlServer:
    def __init__(self, path: str, dispatch: Dispatch) -> None:
        self.path = str(path)
        self.dispatch = dispatch
        self._server: asyncio.AbstractServer | None = None
        self._inode: int | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Listen on ``path``: create its directory, take over a stale socket file, refuse
        to start when another daemon listens there."""
        path = self.path
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, mode=0o755, exist_ok=True)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is not None:
            if not stat.S_ISSOCK(st.st_mode):
                raise ControlSocketInUse(f"{path} exists and is not a socket; remove it first")
            if _socket_in_use(path):
                raise ControlSocketInUse(
                    f"another bgpd is already listening on the control socket {path}"
                )
            log.info("removing stale control socket", path=path)
            os.unlink(path)
        self._server = await asyncio.start_unix_server(self._serve, path=path, limit=MAX_REQUEST)
        os.chmod(path, SOCKET_MODE)
        self._inode = os.stat(path).st_ino
        log.info("control socket listening", path=path)

    async def close(self) -> None:
        """Stop listening, drop the clients and remove the socket file (if still ours)."""
        server, self._server = self._server, None
        if server is None:
            return
        await stop_serving(server, self._clients)
        with contextlib.suppress(FileNotFoundError):
            if os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)

    async def __aenter__(self) -> "ControlServer":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:  # accepted while closing
            writer.close()
            return
        self._clients.add(writer)
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than MAX_REQUEST: the stream cannot be resynced
                    await self._send(writer, {"ok": False, "error": "request too long"})
                    break
                if not line:
                    break
                if not line.strip():
                    continue
                reply = await self.handle_line(line)
                await self._send(writer, reply)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._clients.discard(writer)
            writer.close()

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, reply: dict) -> None:
        writer.write(_encode(reply))
        await writer.drain()

    async def handle_line(self, line: bytes) -> dict:
        """The reply to one request line (also usable without a socket, e.g. in tests)."""
        try:
            request = json.loads(line)
        except (ValueError, UnicodeDecodeError) as e:
            return {"ok": False, "error": f"invalid JSON: {e}"}
        if not isinstance(request, dict):
            return {"ok": False, "error": "a request is a JSON object"}
        command = request.get("command")
        args = request.get("args")
        if args is None:
            args = {}
        if not isinstance(command, str) or not isinstance(args, dict):
            return {
                "ok": False,
                "error": 'a request is {"command": string, "args": object}',
            }
        try:
            result = self.dispatch(command, args)
            if inspect.isawaitable(result):
                result = await result
        except CommandError as e:
            return {"ok": False, "error": str(e)}
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("control command failed", command=command, args=args)
            return {"ok": False, "error": f"internal error in {command}: {type(e).__name__}: {e}"}
        return {"ok": True, "result": result}


def _encode(reply: dict) -> bytes:
    try:
        text = json.dumps(reply, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        log.error("control reply is not JSON", error=str(e))
        text = json.dumps({"ok": False, "error": f"internal error: reply is not JSON: {e}"})
    return text.encode() + b"\n"

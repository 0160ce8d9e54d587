"""A synchronous client for the control socket (used by the CLI; plain ``socket``, no asyncio)."""

import json
import socket
from typing import Any


class ApiError(Exception):
    """The request failed: the daemon answered with an error, or could not be asked."""


class DaemonNotRunning(ApiError):
    """Nothing listens on the control socket."""

    def __init__(self, path: str, detail: str = "no control socket") -> None:
        self.path = path
        self.detail = detail
        super().__init__(f"bgpd is not running ({detail} at {path})")


def request(path: str, command: str, args: dict | None = None, timeout: float = 10) -> Any:
    """Send one command to the daemon at the control socket ``path`` and return its result.

    Raises :class:`DaemonNotRunning` when there is no socket or nobody listens on it, and
    :class:`ApiError` for every other failure, including an ``ok: false`` reply.
    """
    path = str(path)
    line = json.dumps({"command": command, "args": args or {}}).encode() + b"\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(path)
        except FileNotFoundError:
            raise DaemonNotRunning(path) from None
        except ConnectionRefusedError:
            raise DaemonNotRunning(path, "connection refused: stale control socket") from None
        except PermissionError:
            raise ApiError(
                f"permission denied on the control socket {path} "
                "(run as root or as a member of its group)"
            ) from None
        except TimeoutError:
            raise ApiError(f"timed out after {timeout:g}s connecting to bgpd at {path}") from None
        except OSError as e:
            raise ApiError(f"cannot connect to the control socket {path}: {e}") from None
        try:
            s.sendall(line)
            reply = _read_line(s)
        except TimeoutError:
            raise ApiError(f"timed out after {timeout:g}s waiting for bgpd to answer {command}")
        except (ConnectionResetError, BrokenPipeError):
            raise ApiError("bgpd closed the connection without answering") from None
        except OSError as e:
            raise ApiError(f"lost the connection to bgpd: {e}") from None
    if not reply:
        raise ApiError("bgpd closed the connection without answering")
    try:
        answer = json.loads(reply)
    except ValueError as e:
        raise ApiError(f"bgpd sent a reply that is not JSON: {e}") from None
    if not isinstance(answer, dict) or "ok" not in answer:
        raise ApiError("bgpd sent a reply without an 'ok' field")
    if not answer["ok"]:
        raise ApiError(str(answer.get("error") or "unknown error"))
    return answer.get("result")


def _read_line(s: socket.socket) -> bytes:
    chunks = []
    while True:
        data = s.recv(65536)
        if not data:
            return b"".join(chunks)
        end = data.find(b"\n")
        if end >= 0:
            chunks.append(data[:end])
            return b"".join(chunks)
        chunks.append(data)

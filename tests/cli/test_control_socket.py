"""bgpd.api: the control socket server and the synchronous client, over real Unix sockets."""

import asyncio
import json
import os
import socket
import stat

import pytest

from bgpd.api.client import ApiError, DaemonNotRunning, request
from bgpd.api.server import (
    CommandError,
    ControlServer,
    ControlSocketInUse,
    Dispatcher,
    UnknownCommand,
)


async def ask(path, command, args=None, timeout=5):
    return await asyncio.to_thread(request, str(path), command, args, timeout)


async def raw_exchange(path, *lines: bytes) -> list[dict]:
    """Send raw request lines on one connection and read one reply per line."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    replies = []
    for line in lines:
        writer.write(line)
        await writer.drain()
        replies.append(json.loads(await reader.readline()))
    writer.close()
    return replies


def echo(command, args):
    if command == "echo":
        return {"args": args}
    if command == "fail":
        raise CommandError("no such neighbor 192.0.2.9")
    if command == "crash":
        raise ZeroDivisionError("division by zero")
    if command == "not_json":
        return {"x": object()}
    raise UnknownCommand(command, ["echo", "fail", "crash"])


async def test_request_reply(tmp_path):
    path = tmp_path / "run" / "bgpd" / "bgpd.sock"  # the directories do not exist yet
    async with ControlServer(str(path), echo):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        assert await ask(path, "echo", {"a": [1, "x"]}) == {"args": {"a": [1, "x"]}}
        assert await ask(path, "echo") == {"args": {}}
    assert not path.exists()


async def test_async_dispatch(tmp_path):
    async def dispatch(command, args):
        await asyncio.sleep(0)
        return {"command": command}

    path = tmp_path / "s.sock"
    async with ControlServer(str(path), dispatch):
        assert await ask(path, "ping") == {"command": "ping"}


async def test_errors_become_replies_and_the_server_survives(tmp_path):
    path = tmp_path / "s.sock"
    async with ControlServer(str(path), echo):
        with pytest.raises(ApiError, match=r"^no such neighbor 192\.0\.2\.9$"):
            await ask(path, "fail")
        with pytest.raises(
            ApiError, match=r"^unknown command 'nope' \(known: crash, echo, fail\)$"
        ):
            await ask(path, "nope")
        with pytest.raises(ApiError, match=r"internal error in crash: ZeroDivisionError"):
            await ask(path, "crash")
        with pytest.raises(ApiError, match="reply is not JSON"):
            await ask(path, "not_json")
        replies = await raw_exchange(
            path,
            b"{not json\n",
            b"[1, 2]\n",
            b'{"command": 5}\n',
            b'{"command": "echo", "args": [1]}\n',
            b"\n" + b'{"command": "echo", "args": {"n": 1}}\n',
            b'{"command": "echo"}\n',
        )
        assert [r["ok"] for r in replies] == [False, False, False, False, True, True]
        assert replies[0]["error"].startswith("invalid JSON")
        assert replies[4]["result"] == {"args": {"n": 1}}
        assert await ask(path, "echo", {"still": "alive"}) == {"args": {"still": "alive"}}


async def test_request_too_long(tmp_path):
    path = tmp_path / "s.sock"
    async with ControlServer(str(path), echo):
        (reply,) = await raw_exchange(path, b"x" * (1 << 20 | 10) + b"\n")
        assert reply == {"ok": False, "error": "request too long"}
        assert await ask(path, "echo") == {"args": {}}


async def test_dispatcher(tmp_path):
    calls = []

    def reset(address, message=None):
        calls.append((address, message))
        return {"message": f"reset {address}"}

    async def summary():
        return {"router_id": "192.0.2.10"}

    path = tmp_path / "s.sock"
    async with ControlServer(
        str(path), Dispatcher({"neighbor_reset": reset, "show_summary": summary})
    ):
        assert await ask(path, "neighbor_reset", {"address": "192.0.2.1"}) == {
            "message": "reset 192.0.2.1"
        }
        assert await ask(path, "show_summary") == {"router_id": "192.0.2.10"}
        with pytest.raises(ApiError, match="neighbor_reset: .*unexpected keyword argument 'bogus'"):
            await ask(path, "neighbor_reset", {"address": "x", "bogus": 1})
        with pytest.raises(
            ApiError, match="neighbor_reset: missing a required argument: 'address'"
        ):
            await ask(path, "neighbor_reset")
        with pytest.raises(ApiError, match="unknown command 'reload'"):
            await ask(path, "reload")
    assert calls == [("192.0.2.1", None)]


async def test_stale_socket_is_replaced(tmp_path):
    path = tmp_path / "s.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens
    with pytest.raises(DaemonNotRunning, match="connection refused"):
        await ask(path, "echo")
    async with ControlServer(str(path), echo):
        assert await ask(path, "echo") == {"args": {}}


async def test_refuses_a_socket_in_use(tmp_path):
    path = tmp_path / "s.sock"
    async with ControlServer(str(path), echo):
        with pytest.raises(ControlSocketInUse, match="another bgpd is already listening"):
            await ControlServer(str(path), echo).start()
        assert await ask(path, "echo") == {"args": {}}  # the first one still serves


async def test_refuses_a_file_that_is_not_a_socket(tmp_path):
    path = tmp_path / "s.sock"
    path.write_text("precious")
    with pytest.raises(ControlSocketInUse, match="exists and is not a socket"):
        await ControlServer(str(path), echo).start()
    assert path.read_text() == "precious"


async def test_close_keeps_a_socket_that_is_not_ours(tmp_path):
    path = tmp_path / "s.sock"
    server = ControlServer(str(path), echo)
    await server.start()
    os.unlink(path)
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(str(path))
    await server.close()
    assert path.exists()
    other.close()


async def test_close_with_a_connected_client(tmp_path):
    path = tmp_path / "s.sock"
    server = ControlServer(str(path), echo)
    await server.start()
    reader, writer = await asyncio.open_unix_connection(str(path))
    await asyncio.wait_for(server.close(), 3)
    assert await reader.read() == b""
    writer.close()


def test_client_no_socket(tmp_path):
    path = tmp_path / "nothing.sock"
    with pytest.raises(DaemonNotRunning) as info:
        request(str(path), "ping")
    assert str(info.value) == f"bgpd is not running (no control socket at {path})"
    assert info.value.path == str(path)


async def test_client_timeout(tmp_path):
    never = asyncio.Event()

    async def hang(command, args):
        await never.wait()

    path = tmp_path / "s.sock"
    async with ControlServer(str(path), hang):
        with pytest.raises(
            ApiError, match=r"timed out after 0\.2s waiting for bgpd to answer ping"
        ):
            await ask(path, "ping", timeout=0.2)


async def test_client_server_closes_without_reply(tmp_path):
    path = tmp_path / "s.sock"

    async def close_at_once(reader, writer):
        writer.close()

    server = await asyncio.start_unix_server(close_at_once, path=str(path))
    async with server:
        with pytest.raises(ApiError, match="closed the connection without answering"):
            await ask(path, "ping")


@pytest.mark.parametrize(
    "error, cls, message",
    [
        (
            PermissionError(13, "Permission denied"),
            ApiError,
            "permission denied on the control socket",
        ),
        (ConnectionRefusedError(111, "refused"), DaemonNotRunning, "connection refused"),
        (TimeoutError(), ApiError, r"timed out after 3s connecting to bgpd"),
        (OSError("AF_UNIX path too long"), ApiError, "cannot connect .*path too long"),
    ],
)
def test_client_connect_errors(monkeypatch, error, cls, message):
    class FailingSocket(socket.socket):
        def connect(self, address):
            raise error

    monkeypatch.setattr("bgpd.api.client.socket.socket", FailingSocket)
    with pytest.raises(cls, match=message) as info:
        request("/run/x.sock", "ping", timeout=3)
    assert type(info.value) is cls


async def test_permission_denied_for_real(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    path = tmp_path / "s.sock"
    async with ControlServer(str(path), echo):
        os.chmod(path, 0)
        with pytest.raises(ApiError, match="permission denied"):
            await ask(path, "echo")

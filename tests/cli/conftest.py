"""A real ControlServer on a Unix socket in tmp_path, run by an event loop in a thread, so
that the synchronous CLI (click's CliRunner) can talk to it."""

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bgpd.api.server import ControlServer


@contextmanager
def serving(path: Path, dispatch: Callable) -> Iterator[ControlServer]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = ControlServer(str(path), dispatch)
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(5)
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


class FakeDaemon:
    """Records requests and answers from ``results[command]`` (an exception is raised)."""

    def __init__(self) -> None:
        self.results: dict = {}
        self.requests: list[tuple[str, dict]] = []

    def __call__(self, command: str, args: dict):
        self.requests.append((command, args))
        result = self.results[command]
        if isinstance(result, Exception):
            raise result
        return result


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[FakeDaemon, str]]:
    fake = FakeDaemon()
    path = tmp_path / "bgpd.sock"
    with serving(path, fake):
        yield fake, str(path)

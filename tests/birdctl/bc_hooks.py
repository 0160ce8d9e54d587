"""Hooks the process tests plug into ``bgpd-bird`` (BGPD_BIRD_RUNNER / BGPD_BIRD_CHECKER):
a stand-in daemon that serves the control socket until SIGTERM, and a stand-in parser."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from datetime import datetime

from bgpd.birdctl.engine import BirdCli
from bgpd.birdctl.server import BirdControlServer
from bgpd.birdctl.snapshot import Protocol, Snapshot, Status


def runner(o) -> int:
    """Report what the process looks like, then serve ``o.socket`` until SIGTERM."""
    with open(os.environ["BC_REPORT"], "w") as f:
        json.dump(
            {
                "prefix": sys.prefix,
                "executable": sys.executable,
                "argv": sys.argv,
                "options": {k: v for k, v in vars(o).items() if k != "argv"},
            },
            f,
        )
    t = datetime.now().replace(microsecond=0)
    snap = Snapshot(Status("192.0.2.1", t, t), (Protocol("static1", "Static", "up", t),))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        async with BirdControlServer(o.socket, BirdCli(lambda: snap)):
            await stop.wait()

    asyncio.run(main())
    return 0


class FakeBirdError(Exception):
    pass


def checker(path: str, ipv6: bool) -> None:
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if "bad" in line:
                raise FakeBirdError(f"{path}:{n}:{line.index('bad') + 1} syntax error")

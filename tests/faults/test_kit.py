"""The fault tests' own checks can fail: a leaked socket or task is caught, and a RIB that
differs from the clean run's is told apart (otherwise "no leak, same RIB" would prove nothing)."""

import asyncio
import os
import socket

import pytest
from faultkit import Leaks, RawPeer, clean_view, rib_view, speaker_config, start_speaker, until
from hostile_peer import P, ibgp_route

SPEAKER = "127.0.0.121"
FEEDER = "127.0.0.122"
PORT = 23000 + os.getpid() % 2000


async def test_views_and_leak_checks_can_fail():
    neighbors = [{"address": FEEDER, "asn": 65000, "passive": True}]
    speaker = await start_speaker(speaker_config(SPEAKER, PORT, neighbors))
    try:
        leaks = Leaks(speaker)
        feeder = await RawPeer(FEEDER, SPEAKER, PORT, 65000).connect()
        feed = [ibgp_route([P("10.1.0.0/24"), P("10.1.1.0/24")], med=7)]
        for u in feed:
            feeder.send(u)
        assert await until(lambda: len(rib_view(speaker)) == 2)
        view = rib_view(speaker)
        clean = await clean_view(SPEAKER, PORT + 1, neighbors, {FEEDER: feed}, expect=2)
        assert view == clean
        other = await clean_view(
            SPEAKER, PORT + 1, neighbors, {FEEDER: [ibgp_route([P("10.1.0.0/24")], med=8)]}, 1
        )
        assert other != view

        # The feeder's socket is still open: a leak until it closes.
        with pytest.raises(AssertionError, match="left over"):
            await leaks.check(timeout=0.5)
        await feeder.close()
        await leaks.check()  # its session's connection on the speaker's side is gone too

        stray = socket.socket()
        task = asyncio.create_task(asyncio.sleep(30))
        with pytest.raises(AssertionError, match="1 tasks"):
            await leaks.check(timeout=0.3)
        stray.close()
        task.cancel()
        await leaks.check()
    finally:
        await speaker.stop()

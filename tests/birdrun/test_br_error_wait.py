"""BIRD's error wait, in-process: bgpd-bird waits ``error wait time`` before a session
starts again only after an error (bgp_update_startup_delay: one it found itself, or a
NOTIFICATION other than Cease from the neighbor). After a Cease or a connection the
neighbor closed (a neighbor stopped by SIGTERM, restarting with ``graceful restart``,
killed) it takes the neighbor's next connection at once, as BIRD does: a Calico node
restarted by runit is back in a second or two, not after its peers' error wait."""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile

import pytest

from bgpd.config import parse
from bgpd.speaker import Speaker
from bgpd.speaker.birdrun import BirdRunSetup, BirdSpeaker, Extras

_ports = itertools.count(24179 + (os.getpid() % 97) * 10)
A, B = "127.0.7.81", "127.0.7.82"  # PYTEST_XDIST_WORKER=gw6's range

CFG = """\
router id 10.0.7.81;
listen bgp address {A} port {port};
protocol device {{ }}
protocol bgp Node_127_0_7_82 {{
  local as 64512;
  neighbor {B} port {port} as 64512;
  source address {A};
  graceful restart;
  connect delay time 1;
  connect retry time 1;
  error wait time 5,30;
  import all;
  export all;
}}
"""


def peer_config(port: int):
    return parse(
        {
            "router_id": "10.0.7.82",
            "asn": 64512,
            "listen": [{"address": B, "port": port}],
            "control_socket": tempfile.mktemp(prefix="bgpd-st-", suffix=".sock"),
            "graceful_restart": True,
            # passive: bgpd-bird must connect (as a Calico node to a mesh peer with a
            # lower address): bgpd's sessions take a connection even while they wait
            "neighbors": [{"address": A, "asn": 64512, "port": port, "passive": True}],
        }
    )


async def until(pred, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if pred():
            return True
        await asyncio.sleep(0.02)
    return bool(pred())


@pytest.mark.parametrize("how", ["cease", "closed"])
async def test_no_error_wait_after_a_cease_or_a_closed_connection(tmp_path, how):
    """The neighbor goes away (Cease 6/2 as a BIRD-like SIGTERM; or no NOTIFICATION, as a
    graceful stop or a crash) and comes back at once: bgpd-bird connects to it again after
    ``connect delay time`` (1 s), long before the 5 s of ``error wait time``."""
    loop = asyncio.get_running_loop()
    port = next(_ports)
    cfg = tmp_path / "bird.cfg"
    cfg.write_text(CFG.format(A=A, B=B, port=port))
    a = BirdSpeaker(BirdRunSetup(str(cfg), False, Extras(), str(tmp_path / "bird.ctl")), loop)
    b = Speaker(peer_config(port), loop=loop)
    b2 = None
    await a.start()
    await b.start()
    try:
        n = a.neighbors[B]
        assert await until(lambda: n.session.established, 10)
        b.stopping.set()
        await b.stop("", graceful=how == "closed")
        assert await until(lambda: not n.session.established, 5)
        b2 = Speaker(peer_config(port), loop=loop)
        t0 = loop.time()
        await b2.start()
        assert await until(lambda: n.session.established, 10)
        took = loop.time() - t0
        assert took < 3.0, f"back after {took:.1f} s: the error wait (5 s) was waited"
    finally:
        for s in (b2, b, a):
            if s is not None and not s.stopping.is_set():
                s.stopping.set()
                await s.stop(marker=False)

"""A reload that changes only a function the filters call re-runs those filters.

confd writes each BGPFilter as a function (``'bgp_<name>_exportFilterV4'()``) and the
peers' filters call it: a changed BGPFilter changes the function's body, not the text of
any protocol's filter. BIRD compares filters with the functions they call, so its
``configure`` re-exports through the new body; bgpd-bird kept the old program until the
cluster lab (tests/lab) saw a ToR receive a new service without the new rule's AS path.
"""

import asyncio
import itertools
import os
import tempfile

from bgpd.config import parse
from bgpd.speaker import Speaker
from bgpd.speaker.birdmode import BirdSetup

_ports = itertools.count(24179 + (os.getpid() % 97) * 10)
A, B = "127.0.0.83", "127.0.0.84"

BIRD_CFG = """
router id 10.0.0.83;
listen bgp address {A} port {port};
protocol static {{
  route 10.83.1.0/26 blackhole;
}}
function 'bgp_tor_exportFilterV4'() {{
  if ((net ~ 10.83.0.0/16)) then {{ {ops} accept; }}
}}
function wrapper() {{
  'bgp_tor_exportFilterV4'();
}}
protocol bgp Node_127_0_0_84 {{
  local as 64512;
  neighbor {B} port {port} as 64513;
  source address {A};
  import all;
  export filter {{
    wrapper();
    reject;
  }};
}}
"""


def _setup(path, **kw) -> BirdSetup:
    path.write_text(BIRD_CFG.format(A=A, B=B, port=1179, **kw))
    return BirdSetup(str(path), control_socket=str(path.parent / "x.ctl"))


def test_fingerprint_sees_called_functions(tmp_path):
    cfg = tmp_path / "bird.cfg"
    one = _setup(cfg, ops="bgp_path.prepend(64512);").filters_for(B).fingerprint()
    same = _setup(cfg, ops="bgp_path.prepend(64512);").filters_for(B).fingerprint()
    other = _setup(cfg, ops="bgp_path.prepend(64512); bgp_path.prepend(64512);")
    assert one == same
    assert other.filters_for(B).fingerprint() != one


async def until(pred, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def routes(sp) -> dict:
    return {r["prefix"]: r["paths"] for r in sp.command("show_routes")["routes"]}


async def test_reload_of_a_called_function_reexports(tmp_path):
    loop = asyncio.get_running_loop()
    port = next(_ports)
    cfg = tmp_path / "bird.cfg"
    cfg.write_text(BIRD_CFG.format(A=A, B=B, port=port, ops=""))
    setup = BirdSetup(str(cfg), control_socket=str(tmp_path / "bgpd.sock"))
    a = Speaker(setup.config, str(cfg), loop=loop, bird=setup)
    b = Speaker(
        parse(
            {
                "router_id": "10.0.0.84",
                "asn": 64513,
                "listen": [{"address": B, "port": port}],
                "control_socket": tempfile.mktemp(prefix="bgpd-test-", suffix=".sock"),
                "neighbors": [{"address": A, "asn": 64512, "port": port, "connect_retry": 1}],
            }
        ),
        loop=loop,
    )
    await a.start()
    await b.start()
    try:

        def path_of():
            p = routes(b).get("10.83.1.0/26")
            return p and p[0]["as_path"]

        assert await until(lambda: path_of() is not None, 15), routes(b)
        first = path_of()
        est = a.neighbors[B].session.fsm.stats.established_at
        cfg.write_text(BIRD_CFG.format(A=A, B=B, port=port, ops="bgp_path.prepend(64512);"))
        result = a.reload()
        assert result["ok"], result
        assert B in result["updated"]
        assert await until(lambda: path_of() != first), (first, routes(b))
        assert str(path_of()).count("64512") == 2, path_of()
        assert a.neighbors[B].session.fsm.stats.established_at == est
    finally:
        await b.stop()
        await a.stop()

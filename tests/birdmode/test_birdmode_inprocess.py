"""bgpd running on a BIRD configuration, in-process, against a bgpd peer over loopback TCP:
Calico's filter conventions (LOCAL_PREF = 2^31-1 - krt_metric on export, preference 200 on
import for a high LOCAL_PREF), BIRD's protocol names, a reload that changes a filter in
place. The differential tests against BIRD 1.6.8 itself are in tests/birdmode/ too."""

import asyncio
import itertools
import os
import tempfile

from bgpd.config import parse
from bgpd.speaker import Speaker
from bgpd.speaker.birdmode import BirdSetup
from bgpd.wire import prefix as pfx
from bgpd.wire.constants import IPV4_UNICAST

_ports = itertools.count(23179 + (os.getpid() % 97) * 10)
A, B = "127.0.0.81", "127.0.0.82"

BIRD_CFG = """
router id 10.0.0.81;
listen bgp address {A} port {port};
function calico_aggr ()
{{
  if ( net = 10.81.1.0/26 ) then {{ accept; }}
  if ( net ~ 10.81.1.0/26 ) then {{ reject; }}
}}
function calico_export_to_bgp_peers(bool internal_peer) {{
  calico_aggr();
  if (net ~ 10.81.0.0/16) then {{ accept; }}
}}
protocol static {{
  route 10.81.1.0/26 blackhole;
  route 10.81.1.5/32 blackhole;
  route 10.99.0.0/24 blackhole;
}}
template bgp bgp_template {{
  local as 64512;
  gateway recursive;
  add paths on;
  graceful restart;
  connect delay time 2;
  connect retry time 5;
  error wait time 5,30;
}}
protocol bgp Node_127_0_0_82 from bgp_template {{
  neighbor {B} port {port} as 64512;
  source address {A};
  import filter {{
    if (defined(bgp_local_pref)&&(bgp_local_pref > 2147483647-1024)) then
      preference = 200;
    accept;
  }};
  export filter {{
    if (defined(source) && source = RTS_BGP && defined(bgp_local_pref)) then {{
      krt_metric = 2147483647 - bgp_local_pref;
    }} else {{
      if (!defined(krt_metric)) then {{ krt_metric = 1024; }}
      bgp_local_pref = 2147483647 - krt_metric;
    }}
    {extra}
    calico_export_to_bgp_peers(true);
    reject;
  }};
}}
"""


async def until(pred, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def routes(sp) -> dict:
    return {r["prefix"]: r["paths"] for r in sp.command("show_routes")["routes"]}


async def test_bird_config_filters_on_a_live_session(tmp_path):
    loop = asyncio.get_running_loop()
    port = next(_ports)
    cfg = tmp_path / "bird.cfg"
    cfg.write_text(BIRD_CFG.format(A=A, B=B, port=port, extra=""))
    setup = BirdSetup(str(cfg), control_socket=str(tmp_path / "bgpd.sock"))
    assert [p.name for p in setup.extras.protocols] == ["static1", "Node_127_0_0_82"]
    a = Speaker(setup.config, str(cfg), loop=loop, bird=setup)
    b = Speaker(
        parse(
            {
                "router_id": "10.0.0.82",
                "asn": 64512,
                "listen": [{"address": B, "port": port}],
                "control_socket": tempfile.mktemp(prefix="bgpd-test-", suffix=".sock"),
                "networks": ["10.82.0.0/24"],
                "neighbors": [{"address": A, "asn": 64512, "port": port, "connect_retry": 1}],
                "policies": {
                    "high": {
                        "terms": [{"set": {"local_pref": 2147483647 - 500}}],
                        "default": "accept",
                    }
                },
            }
        ),
        loop=loop,
    )
    await a.start()
    await b.start()
    try:
        assert await until(lambda: "10.81.1.0/26" in routes(b), 15), routes(b)
        got = routes(b)
        # only the block: its /32 is aggregated away, 10.99/24 is outside the pools
        assert set(got) - {"10.82.0.0/24"} == {"10.81.1.0/26"}
        (path,) = got["10.81.1.0/26"]
        assert path["local_pref"] == 2147483647 - 1024  # the kernel metric, as LOCAL_PREF
        # b's own route arrives at a with LOCAL_PREF 100 (iBGP default): preference stays 100
        assert await until(lambda: "10.82.0.0/24" in routes(a))
        loc = a.rde.rib.loc[IPV4_UNICAST]
        best = loc.route(pfx.from_str("10.82.0.0/24"))[0]
        assert best.attrs_for(IPV4_UNICAST, pfx.from_str("10.82.0.0/24")).preference is None
        # a reload with another export filter: applied in place, no reset
        est = a.neighbors[B].session.fsm.stats.established_at
        cfg.write_text(
            BIRD_CFG.format(A=A, B=B, port=port, extra="bgp_community.add((65000, 100));")
        )
        result = a.reload()
        assert result["ok"], result
        assert B in result["updated"]

        def tagged():
            p = routes(b).get("10.81.1.0/26")
            return p and p[0]["communities"] == ["65000:100"]

        assert await until(tagged), routes(b)
        assert a.neighbors[B].session.fsm.stats.established_at == est
        # a broken file: BIRD's error, the running config kept
        cfg.write_text("router id 10.0.0.81;\nprotocol bogus {}\n")
        result = a.reload()
        assert not result["ok"] and ":2:" in result["error"], result
    finally:
        await b.stop()
        await a.stop()

"""bgpd-bird serves one family on the kernel side, as BIRD's kernel protocol does.

calico-node runs ``bird`` (IPv4) and ``bird6`` (IPv6) on one node, both writing protocol 12
into the main table. Each must learn, install and sweep routes of its own family only:
when each served both, each took the other's routes for strays of its own and deleted them
(found by the cluster lab, tests/lab: the nodes' FIBs emptied as fast as they were
written).
"""

import asyncio

import pytest

from bgpd.kernel.state import HostState
from bgpd.speaker import Speaker
from bgpd.speaker.birdmode import BirdSetup
from bgpd.wire.constants import IPV4_UNICAST, IPV6_UNICAST

CFG = """
router id 10.0.0.1;
protocol kernel {
  learn;
  persist;
  scan time 2;
  import all;
  export all;
  graceful restart;
}
protocol device { scan time 2; }
"""


@pytest.fixture
def loop():
    """A loop of its own: the speaker is made outside a running loop here."""
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


def _speaker(tmp_path, ipv6: bool, loop=None) -> Speaker:
    cfg = tmp_path / ("bird6.cfg" if ipv6 else "bird.cfg")
    cfg.write_text(CFG)
    setup = BirdSetup(str(cfg), ipv6=ipv6, control_socket=str(tmp_path / "x.ctl"))
    return Speaker(setup.config, str(cfg), bird=setup, loop=loop)


def test_bird_serves_ipv4_only(tmp_path, loop):
    sp = _speaker(tmp_path, ipv6=False, loop=loop)
    assert set(sp.rde.rib.loc) == {IPV4_UNICAST, IPV6_UNICAST}  # the engine has both
    assert list(sp.kernel_locs()) == [IPV4_UNICAST]


def test_bird6_serves_ipv6_only(tmp_path, loop):
    sp = _speaker(tmp_path, ipv6=True, loop=loop)
    assert list(sp.kernel_locs()) == [IPV6_UNICAST]
    assert sp.kernel_locs()[IPV6_UNICAST] is sp.rde.rib.loc[IPV6_UNICAST]


async def test_the_kernel_side_gets_one_family(tmp_path, monkeypatch):
    """start_kernel hands the kernel service (FIB writer and host routes) one family."""
    import bgpd.kernel

    made = {}

    class FakeKernel:
        def __init__(self, locs, settings, *, routes, export, local_as):
            made["locs"], made["families"] = locs, routes.families
            self.state = HostState()  # what BIRD mode's next-hop resolution reads

        async def start(self):
            made["started"] = True

    monkeypatch.setattr(bgpd.kernel, "Kernel", FakeKernel)  # start_kernel imports it from there
    for ipv6, fam in ((False, IPV4_UNICAST), (True, IPV6_UNICAST)):
        made.clear()
        d = tmp_path / str(fam)
        d.mkdir()
        sp = _speaker(d, ipv6)
        await sp.start_kernel()
        assert made == {"locs": {fam: sp.rde.rib.loc[fam]}, "families": {fam}, "started": True}

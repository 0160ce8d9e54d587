"""The FIB writer against an in-memory kernel: batching, idempotence, adoption and sweep,
errors and resyncs. The same writer runs against real namespaces in test_kernel_netns.py."""

import asyncio
import errno
import ipaddress

from kernel_helpers import FakeKernel

from bgpd.kernel import FibSettings, FibWriter, HostState, KernelRoute
from bgpd.kernel.fib import KERNEL_OWNS
from bgpd.kernel.netlink import (
    AF_INET,
    IFF_LOWER_UP,
    IFF_UP,
    RTM_DELROUTE,
    RTM_NEWROUTE,
    RTN_UNICAST,
    RTPROT_KERNEL,
    AddrMsg,
    LinkMsg,
    RouteMsg,
)
from bgpd.rib import DecisionConfig, LocRib, Source
from bgpd.wire import AttrSet, intern
from bgpd.wire import prefix as pfx
from bgpd.wire.constants import AS_SEQUENCE, IPV4_UNICAST, IPV6_UNICAST

UP = IFF_UP | IFF_LOWER_UP
S = FibSettings(254, 186, 0)


def a(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def p(text: str) -> bytes:
    return pfx.from_network(ipaddress.ip_network(text))


def attrs(nh: str) -> AttrSet:
    return intern(AttrSet(origin=0, as_path=((AS_SEQUENCE, (65001,)),), next_hop=a(nh)))


def host() -> HostState:
    h = HostState()
    h.set_link(LinkMsg(2, "eth0", UP))
    h.set_link(LinkMsg(3, "eth1", UP))
    h.add_addr(AddrMsg(AF_INET, 2, 24, a("10.0.0.1"), a("10.0.0.1"), 0, 0))
    h.add_addr(AddrMsg(AF_INET, 3, 24, a("10.1.0.1"), a("10.1.0.1"), 0, 0))
    return h


def route(dst: str, gw: str, ifx: int, metric: int = 0, proto: int = 186) -> KernelRoute:
    return KernelRoute(AF_INET, p(dst), RTN_UNICAST, ((a(gw), ifx),), metric, 254, proto)


class Env:
    def __init__(self, fake=None, h=None, multipath=1, **kw):
        self.locs = {
            IPV4_UNICAST: LocRib(IPV4_UNICAST, DecisionConfig(multipath=multipath)),
            IPV6_UNICAST: LocRib(IPV6_UNICAST),
        }
        self.loc = self.locs[IPV4_UNICAST]
        self.fake = fake or FakeKernel()
        self.host = h or host()
        self.fib = FibWriter(self.locs, S, self.host, self.fake, **kw)
        self.peer = Source("10.0.0.2", "bgp", asn=65001, local_as=65000, address_key=b"\x02")
        self.peer2 = Source("10.1.0.2", "bgp", asn=65001, local_as=65000, address_key=b"\x03")

    def announce(self, prefixes, nh="10.0.0.2", src=None):
        self.loc.announce(src or self.peer, [p(x) for x in prefixes], attrs(nh))
        self.loc.commit()

    def withdraw(self, prefixes, src=None):
        self.loc.withdraw(src or self.peer, [p(x) for x in prefixes])
        self.loc.commit()

    async def idle(self):
        await self.fib.wait_idle(5)

    def kernel(self) -> dict:
        return self.fake.by_dst()


async def test_install_replace_withdraw_and_idempotence():
    e = Env(multipath=2)
    await e.fib.start()
    e.announce(["10.244.1.0/26", "10.244.2.0/26"])
    await e.idle()
    assert e.kernel() == {
        p("10.244.1.0/26"): route("10.244.1.0/26", "10.0.0.2", 2),
        p("10.244.2.0/26"): route("10.244.2.0/26", "10.0.0.2", 2),
    }
    # ECMP: a second equal path makes it one multipath route, by replace
    e.announce(["10.244.1.0/26"], nh="10.1.0.2", src=e.peer2)
    await e.idle()
    assert e.kernel()[p("10.244.1.0/26")].nexthops == ((a("10.0.0.2"), 2), (a("10.1.0.2"), 3))
    n = len(e.fake.batches)
    # the same state again: nothing is sent
    e.fib.pending[IPV4_UNICAST].update(e.loc.table)
    e.fib._kick()
    await e.idle()
    assert len(e.fake.batches) == n
    e.withdraw(["10.244.1.0/26", "10.244.2.0/26"])
    e.withdraw(["10.244.1.0/26"], src=e.peer2)
    await e.idle()
    assert e.kernel() == {}
    assert e.fib.stats["added"] == 3 and e.fib.stats["removed"] == 2
    await e.fib.close()
    assert e.fake.closed


async def test_batches_yield_to_the_event_loop():
    e = Env(batch=10)
    await e.fib.start()
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    t = asyncio.get_running_loop().create_task(ticker())
    e.announce([f"10.{i >> 8}.{i & 255}.0/24" for i in range(100)])
    await e.idle()
    t.cancel()
    assert len(e.kernel()) == 100
    assert len(e.fake.batches) == 10 and ticks >= 10
    assert e.fib.stats["max_batch_ms"] > 0
    await e.fib.close()


async def test_next_hop_changes_redo_the_routes_that_depend_on_them():
    h = host()
    e = Env(h=h)
    await e.fib.start()
    e.announce(["10.244.1.0/26", "10.244.2.0/26"], nh="192.168.5.5")
    await e.idle()
    assert e.kernel() == {}
    assert e.fib.status(IPV4_UNICAST, p("10.244.1.0/26")) == "no route to next hop 192.168.5.5"
    h.add_route(RouteMsg(AF_INET, p("192.168.0.0/16"), 254, 3, 0, 1, 0, ((a("10.1.0.254"), 3),)))
    e.fib.resolver_changed()
    await e.idle()
    assert e.kernel()[p("10.244.2.0/26")] == route("10.244.2.0/26", "10.1.0.254", 3)
    assert e.fib.status(IPV4_UNICAST, p("10.244.1.0/26")) == "installed"
    h.del_route(RouteMsg(AF_INET, p("192.168.0.0/16"), 254, 3, 0, 1, 0, ()))
    e.fib.resolver_changed()
    await e.idle()
    assert e.kernel() == {}
    await e.fib.close()


async def test_adoption_then_sweep_after_initial_convergence():
    fake = FakeKernel()
    keep = route("10.244.1.0/26", "10.0.0.2", 2)
    changed = route("10.244.2.0/26", "10.0.0.9", 2)
    stale = route("10.244.3.0/26", "10.0.0.2", 2)
    # ours at another metric: metrics are per route (an export filter may set them), so it is
    # adopted like the others and swept if nobody confirms it
    stray = route("10.244.4.0/26", "10.0.0.2", 2, metric=50)
    alien = route("10.244.5.0/26", "10.0.0.2", 2, proto=3)
    for r in (keep, changed, stale, stray, alien):
        fake.routes[(r.family, r.dst, r.metric)] = r
    e = Env(fake=fake)
    await e.fib.start()
    assert e.fib.stats["adopted"] == 4
    assert e.fib.status(IPV4_UNICAST, keep.dst) == "adopted"
    e.announce(["10.244.1.0/26", "10.244.2.0/26"])
    await e.idle()
    # the identical one cost nothing; the changed one was replaced; nothing deleted yet
    sent = [r.dst for batch in fake.batches for _op, r in batch]
    assert sent == [changed.dst]
    assert set(e.kernel()) == {keep.dst, changed.dst, stale.dst, stray.dst, alien.dst}
    assert e.fib.status(IPV4_UNICAST, keep.dst) == "installed"
    e.fib.initial_convergence_done()
    await e.idle()
    assert set(e.kernel()) == {keep.dst, changed.dst, alien.dst}
    assert e.fib.stats["swept"] == 2
    await e.fib.close()


async def test_kernel_refusals_are_reasons_and_are_retried_when_the_host_changes():
    e = Env()
    e.fake.fail[p("10.244.1.0/26")] = errno.ENODEV
    await e.fib.start()
    e.announce(["10.244.1.0/26", "10.244.2.0/26"])
    await e.idle()
    assert set(e.kernel()) == {p("10.244.2.0/26")}
    reason = e.fib.status(IPV4_UNICAST, p("10.244.1.0/26"))
    assert reason == "kernel refused: injected ENODEV"
    # a replace that fails leaves the old route: it is removed rather than left stale
    e.fake.fail[p("10.244.2.0/26")] = errno.ENETUNREACH
    e.announce(["10.244.2.0/26"], nh="10.1.0.2")
    await e.idle()
    assert e.kernel() == {}
    e.fake.fail.clear()
    e.fib.resolver_changed()
    await e.idle()
    assert set(e.kernel()) == {p("10.244.1.0/26"), p("10.244.2.0/26")}
    assert e.fib.stats["failed"] == 2
    await e.fib.close()


async def test_eexist_is_retried_once_as_delete_then_add():
    class Once(FakeKernel):
        def apply(self, requests):
            out = super().apply(requests)
            self.fail.pop(p("10.244.1.0/26"), None)
            return out

    e = Env(fake=Once())
    e.fake.fail[p("10.244.1.0/26")] = errno.EEXIST
    await e.fib.start()
    e.announce(["10.244.1.0/26"])
    await e.idle()
    assert set(e.kernel()) == {p("10.244.1.0/26")}
    ops = [op for batch in e.fake.batches for op, _r in batch]
    assert ops == [24, 25, 24]  # add (EEXIST), delete, add
    await e.fib.close()


async def test_lost_answers_make_it_resync():
    e = Env()
    await e.fib.start()
    e.fake.enobufs = True
    e.announce(["10.244.1.0/26", "10.244.2.0/26"])
    await asyncio.sleep(0.3)  # first back-off
    await e.idle()
    assert e.fib.stats["resyncs"] == 1
    assert set(e.kernel()) == {p("10.244.1.0/26"), p("10.244.2.0/26")}
    assert e.fib.status(IPV4_UNICAST, p("10.244.1.0/26")) == "installed"
    await e.fib.close()


async def test_persist_false_removes_our_routes_on_close():
    for persist in (True, False):
        e = Env(persist=persist)
        await e.fib.start()
        e.announce(["10.244.1.0/26"])
        await e.idle()
        await e.fib.close()
        assert bool(e.kernel()) is persist


async def test_a_proto_kernel_route_to_the_same_prefix_keeps_ours_out():
    h = host()
    e = Env(h=h)
    await e.fib.start()
    kr = RouteMsg(AF_INET, p("10.1.0.0/24"), 254, RTPROT_KERNEL, 253, 1, 0, ((None, 3),))
    h.add_route(kr)
    e.announce(["10.1.0.0/24"])
    await e.idle()
    assert e.kernel() == {}
    assert e.fib.status(IPV4_UNICAST, p("10.1.0.0/24")) == KERNEL_OWNS
    h.del_route(kr)
    e.fib.host_route_changed(AF_INET, p("10.1.0.0/24"))
    await e.idle()
    assert set(e.kernel()) == {p("10.1.0.0/24")}
    await e.fib.close()


async def test_routes_removed_behind_our_back_are_put_back():
    e = Env()
    await e.fib.start()
    e.announce(["10.244.1.0/26", "10.244.2.0/26"])
    await e.idle()
    r = e.kernel()[p("10.244.1.0/26")]
    del e.fake.routes[(r.family, r.dst, r.metric)]  # `ip route del ... proto bgp`
    e.fib.route_changed_externally(RouteMsg(AF_INET, r.dst, 254, 186, 0, 1, 0, ()), True)
    await e.idle()
    assert p("10.244.1.0/26") in e.kernel()
    # an interface went down: the kernel flushed the routes through it
    e.fake.routes.clear()
    e.fib.resolver_changed(flushed={2})
    await e.idle()
    assert set(e.kernel()) == {p("10.244.1.0/26"), p("10.244.2.0/26")}
    await e.fib.close()


async def test_export_hook_filters_what_is_installed():
    e = Env(export=lambda fam, prefix, cands, r: r if prefix[0] >= 26 else None)
    await e.fib.start()
    e.announce(["10.244.1.0/26", "10.0.0.0/8"])
    await e.idle()
    assert set(e.kernel()) == {p("10.244.1.0/26")}
    await e.fib.close()


async def test_export_hook_sets_the_metric_and_a_metric_change_adds_then_deletes():
    """BIRD's krt_metric: a per-route metric; another metric is another kernel route, so a
    change adds the new route before it deletes the old one."""
    metric = {"m": 1024}
    e = Env(export=lambda fam, prefix, cands, r: r._replace(metric=metric["m"]))
    await e.fib.start()
    e.announce(["10.244.1.0/26"])
    await e.idle()
    assert e.kernel()[p("10.244.1.0/26")].metric == 1024
    metric["m"] = 512
    e.fake.batches.clear()
    e.fib.pending[IPV4_UNICAST].add(p("10.244.1.0/26"))
    e.fib._kick()
    await e.idle()
    ops = [(op, r.metric) for batch in e.fake.batches for op, r in batch]
    assert ops == [(RTM_NEWROUTE, 512), (RTM_DELROUTE, 1024)]
    assert [r.metric for r in e.fake.routes.values()] == [512]
    await e.fib.close()


async def test_a_second_route_of_ours_for_a_prefix_is_a_stray():
    """Two routes of ours for one prefix (metrics changed between runs): the one with the
    configured metric is adopted, the other swept with the unconfirmed routes."""
    fake = FakeKernel()
    good = route("10.244.1.0/26", "10.0.0.2", 2)
    other = route("10.244.1.0/26", "10.0.0.2", 2, metric=50)
    for r in (other, good):
        fake.routes[(r.family, r.dst, r.metric)] = r
    e = Env(fake=fake)
    await e.fib.start()
    assert e.fib.stats["adopted"] == 1 and e.fib.strays == [other]
    e.announce(["10.244.1.0/26"])
    await e.idle()
    e.fib.initial_convergence_done()
    await e.idle()
    assert list(fake.routes.values()) == [good]
    await e.fib.close()

"""The decode cache of an AttrPool is pruned of sets nothing holds, and pruning stays cheap
when most sets are alive (a full table has far more live sets than the first threshold)."""

from bgpd.wire import AttrPool, AttrSet, Context, decode_message, encode_attrs, pack_announce
from bgpd.wire import prefix as pfx
from bgpd.wire.constants import IPV4_UNICAST

P = pfx.from_str("10.0.0.0/24")


def body(med: int) -> bytes:
    attrs = AttrSet(origin=0, as_path=(), next_hop=pfx.addr_from_str("192.0.2.1"), med=med)
    (msg,) = pack_announce(IPV4_UNICAST, attrs, [P], Context())
    return msg[19:]


def test_prune_drops_dead_sets_and_keeps_live_ones(monkeypatch):
    monkeypatch.setattr(AttrPool, "PRUNE_AT", 100)
    pool = AttrPool()
    ctx = Context(pool=pool)
    held = [decode_message(2, body(i), ctx).attrs for i in range(50)]
    for i in range(50, 400):  # decoded and dropped at once
        decode_message(2, body(i), ctx)
    assert len(pool.by_raw) <= 200
    live = {a for a, _e in pool.by_raw.values()}
    assert set(held) <= live
    again = decode_message(2, body(7), ctx).attrs
    assert again is held[7]  # still interned


def test_prune_is_amortised_when_every_set_is_alive(monkeypatch):
    monkeypatch.setattr(AttrPool, "PRUNE_AT", 100)
    calls = []
    real = AttrPool.prune

    def counting(self):
        calls.append(len(self.by_raw))
        real(self)

    monkeypatch.setattr(AttrPool, "prune", counting)
    pool = AttrPool()
    ctx = Context(pool=pool)
    held = [decode_message(2, body(i), ctx).attrs for i in range(5000)]
    assert len(pool.by_raw) == 5000 and len(held) == 5000
    # thresholds 100, 200, 400 ... 6400: six prunes, not one per set past the first 100
    assert len(calls) <= 7, calls
    assert encode_attrs(held[-1])  # the sets are usable

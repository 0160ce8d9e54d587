"""An AttrPool's decode cache holds sets only while something else does: a block seen again
while its set lives is not decoded again, and a set no route uses any more is freed (a peer
that changes its attributes all day must not grow the speaker's memory)."""

import gc
import weakref

from bgpd.wire import AttrPool, AttrSet, Context, decode_message, encode_attrs, pack_announce
from bgpd.wire import prefix as pfx
from bgpd.wire.attrs import tlv
from bgpd.wire.constants import IPV4_UNICAST

P = pfx.from_str("10.0.0.0/24")


def body(med: int, extra: bytes = b"") -> bytes:
    attrs = AttrSet(origin=0, as_path=(), next_hop=pfx.addr_from_str("192.0.2.1"), med=med)
    block = encode_attrs(attrs) + extra
    return b"\x00\x00" + len(block).to_bytes(2, "big") + block + P


def test_a_live_set_is_found_again_without_decoding():
    pool = AttrPool()
    ctx = Context(pool=pool)
    first = decode_message(2, body(1), ctx).attrs
    again = decode_message(2, body(1), ctx).attrs
    assert again is first
    assert len(pool.by_raw) == 1


def test_sets_nothing_holds_are_freed():
    pool = AttrPool()
    ctx = Context(pool=pool)
    held = [decode_message(2, body(i), ctx).attrs for i in range(50)]
    dropped = [weakref.ref(decode_message(2, body(i), ctx).attrs) for i in range(50, 5000)]
    gc.collect()
    assert all(r() is None for r in dropped)
    assert len(pool.by_raw) == 50 and len(pool) == 50
    assert decode_message(2, body(7), ctx).attrs is held[7]


def test_results_with_errors_are_kept_and_bounded():
    pool = AttrPool()
    ctx = Context(pool=pool)
    dup = tlv(0xC0, 7, b"\x00\x00\x01")  # AGGREGATOR of 3 octets: attribute discard
    m = decode_message(2, body(1, dup), ctx)
    assert m.error is not None
    assert decode_message(2, body(1, dup), ctx).attrs is m.attrs
    for i in range(AttrPool.ERRORS_KEPT + 10):
        decode_message(2, body(i + 2, dup), ctx)
    assert 0 < len(pool.by_raw_error) <= AttrPool.ERRORS_KEPT


def test_many_live_sets():
    pool = AttrPool()
    ctx = Context(pool=pool)
    held = [decode_message(2, body(i), ctx).attrs for i in range(20000)]
    assert len(pool.by_raw) == 20000
    (msg,) = pack_announce(IPV4_UNICAST, held[-1], [P], Context())
    assert decode_message(2, msg[19:], ctx).attrs is held[-1]

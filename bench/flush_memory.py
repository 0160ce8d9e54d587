"""A full table withdrawn at once (a reflector's feeder session goes down): the memory the
route engine holds while the withdrawals go out, in process, without sockets.

One source announces N prefixes (200 per attribute set, as bench/rr.py's feeder), four
members of one export group take the table; then the source's routes are flushed, committed
and drained. Reported: the Python memory (tracemalloc) the engine holds once the change is
committed (what waits for the drain), its peak from the flush to the end of the drain, and
the time of flush, commit and drain (a second run, tracemalloc off).

    .venv/bin/python bench/flush_memory.py --n 1000000
    PYTHONPATH=/path/to/other/tree .venv/bin/python bench/flush_memory.py   # another tree,
                                                                           # from outside it
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc

from bgpd.rib import Exporter, LocRib, Source
from bgpd.wire import AttrSet, Context
from bgpd.wire.attrs import intern
from bgpd.wire.constants import AS_SEQUENCE, IPV4_UNICAST

ASN = 65000


def identity(src, attrs, prefix, fam):
    return attrs


class Member:
    def __init__(self, name: str) -> None:
        self.source = Source(name, "bgp", asn=ASN, local_as=ASN)
        self.writable = True


def build(n: int):
    loc = LocRib(IPV4_UNICAST)
    exporter = Exporter({IPV4_UNICAST: loc})
    feeder = Source("feeder", "bgp", asn=ASN, local_as=ASN)
    for i in range(4):
        exporter.join(
            Member(f"m{i}"), "k", Context(as4=True, ibgp=True), identity, (IPV4_UNICAST,), None
        )
    keys = [bytes([24, 10 + (i >> 16), (i >> 8) & 255, i & 255]) for i in range(n)]
    for k in range(0, n, 200):
        attrs = intern(
            AttrSet(
                origin=0,
                as_path=((AS_SEQUENCE, (65001, k // 200 % 60000 + 1)),),
                next_hop=bytes([192, 0, 2, 1]),
                local_pref=100,
            )
        )
        loc.announce(feeder, keys[k : k + 200], attrs)
        if k % 20000 == 0:
            loc.publish()
    loc.publish()
    drain(exporter)
    gc.collect()
    return loc, exporter, feeder


def drain(exporter) -> int:
    sent = 0
    while True:
        out, more = exporter.drain(20000)
        sent += sum(len(b) for msgs in out.values() for b in msgs)
        if not more:
            return sent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="prefixes")
    args = ap.parse_args(argv)

    loc, exporter, feeder = build(args.n)
    t0 = time.perf_counter()
    loc.flush(feeder)
    loc.publish()
    sent = drain(exporter)
    seconds = time.perf_counter() - t0
    del loc, exporter, feeder
    gc.collect()

    loc, exporter, feeder = build(args.n)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    loc.flush(feeder)
    loc.publish()
    held = tracemalloc.get_traced_memory()[0] - base
    drain(exporter)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    mib = 2**20
    print(f"bgpd from {sys.modules['bgpd'].__file__}")
    print(
        f"{args.n:,} prefixes withdrawn to 4 members ({sent:,} octets each sent): "
        f"flush+commit+drain {seconds:.2f} s; held for the drain {held / mib:.1f} MiB; "
        f"peak {peak / mib:.1f} MiB (tracemalloc, over the steady state)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""UPDATE codec throughput: bgpd against scapy's and ExaBGP's BGP decoders, in one run.

The input is a synthetic but realistic full table: ``--ipv4`` /24 prefixes (or, with
``--ipv4-lengths dfz``, a DFZ-like mix of lengths) and ``--ipv6`` prefixes (/48../64), one attribute set per 10-200 prefixes (seeded RNG), attribute sets with
AS paths of 2-8 ASNs (some four-octet, some prepending), communities, MED and sometimes large
communities, packed into UPDATEs of at most 4096 octets by ``bgpd.wire.pack_announce``
(IPv6 in MP_REACH_NLRI). Measured, each several times, median quoted:

- bgpd decode: the byte stream through ``Framer.feed`` (in ``--chunk``-octet reads, as from a
  socket) and ``decode_message`` for every message, with a fresh ``AttrPool`` per run so that
  interning is paid for; for the mix, IPv4 only and IPv6 only.
- bgpd encode: the RIB's view, a list of ``(family, AttrSet, prefixes)`` groups, to UPDATE
  bytes via ``pack_announce``; every set's encoding cache is cleared before each run.
- scapy and ExaBGP decode the same messages, on a sample of about ``--sample`` prefixes
  (with the same IPv4/IPv6 proportion); bgpd decodes the same sample for the ratio.

Run: ``make bench-codec`` or ``.venv/bin/python bench/codec.py [--help]``. Results go to
``bench/results/codec-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

from bgpd.wire import (  # noqa: E402
    DEFAULT_POOL,
    AttrPool,
    AttrSet,
    Context,
    Framer,
    decode_message,
    pack_announce,
)
from bgpd.wire import prefix as pfx  # noqa: E402
from bgpd.wire.constants import AFI_IPV4, AFI_IPV6, IPV4_UNICAST, IPV6_UNICAST  # noqa: E402

HEADER_LEN = 19

# --- the data set ---------------------------------------------------------------------------

# Upstreams a route server or reflector would hear a full table from (the first AS of a path).
_PEER_ASNS = (174, 1299, 2914, 3257, 3356, 6453, 6461, 6762, 6939, 64512, 4200000101)


def _random_attrs(rng: random.Random, v6: bool) -> AttrSet:
    length = rng.randint(2, 8)
    path = [rng.choice(_PEER_ASNS)]
    while len(path) < length:
        if rng.random() < 0.8:
            asn = rng.randint(1, 64495)
        else:
            asn = rng.randint(131072, 4199999999)
        # Some ASes prepend themselves.
        path.extend([asn] * (1 if rng.random() < 0.85 else rng.randint(2, 3)))
    path = tuple(path[:length])
    if v6:
        k = rng.randint(1, 8)
        nh = bytes.fromhex("20010db8000000000000000000000000")[:-1] + bytes((k,))
        if rng.random() < 0.3:  # global + link-local
            nh += bytes.fromhex("fe800000000000000000000000000000")[:-1] + bytes((k,))
    else:
        nh = bytes((192, 0, 2, rng.randint(1, 8)))
    communities = ()
    if rng.random() < 0.9:
        communities = tuple(
            sorted(
                (rng.choice(path[:2]) & 0xFFFF) << 16 | rng.randint(0, 65535)
                for _ in range(rng.randint(1, 6))
            )
        )
    large = ()
    if rng.random() < 0.25:
        large = tuple(
            (rng.choice(path), rng.randint(0, 1000), rng.randint(0, 1000))
            for _ in range(rng.randint(1, 3))
        )
    aggregator = None
    if rng.random() < 0.05:
        aggregator = (path[-1], bytes((10, rng.randint(0, 255), rng.randint(0, 255), 1)))
    return AttrSet(
        origin=rng.choices((0, 1, 2), weights=(85, 1, 14))[0],
        as_path=((2, path),),  # one AS_SEQUENCE
        next_hop=nh,
        med=rng.randint(0, 1000) if rng.random() < 0.8 else None,
        atomic_aggregate=aggregator is not None and rng.random() < 0.5,
        aggregator=aggregator,
        communities=communities,
        large_communities=large,
    )


def _ipv4_prefixes(rng: random.Random, n: int) -> list[bytes]:
    """``n`` distinct /24s between 1.0.0.0 and 223.255.255.0, in address order."""
    nets = rng.sample(range(0x010000, 0xE00000), n)
    nets.sort()
    return [b"\x18" + x.to_bytes(3, "big") for x in nets]


# IPv4 prefix lengths in a DFZ table (rounded shares, percent): mostly /24, the rest /8../23.
_DFZ_V4_LENGTHS = {
    24: 60,
    23: 10,
    22: 11,
    21: 5,
    20: 4.5,
    19: 3,
    18: 1.5,
    17: 1,
    16: 3,
    15: 0.5,
    12: 0.5,
}


def _ipv4_prefixes_dfz(rng: random.Random, n: int) -> list[bytes]:
    """``n`` distinct IPv4 prefixes with DFZ-like lengths (/12../24), in address order."""
    lengths = list(_DFZ_V4_LENGTHS)
    weights = list(_DFZ_V4_LENGTHS.values())
    seen: set[tuple[int, int]] = set()
    while len(seen) < n:
        for plen in rng.choices(lengths, weights, k=n - len(seen)):
            seen.add((rng.randint(0x01000000, 0xDFFFFFFF) >> (32 - plen) << (32 - plen), plen))
    # Built in table order, as the /24s are (allocation order changes iteration speed).
    return [
        bytes((plen,)) + net.to_bytes(4, "big")[: (plen + 7) >> 3] for net, plen in sorted(seen)
    ]


def _ipv6_prefixes(rng: random.Random, n: int) -> list[bytes]:
    """``n`` distinct prefixes /48../64 inside 2000::/3, in address order."""
    seen: set[tuple[int, int]] = set()
    while len(seen) < n:
        plen = rng.randint(48, 64)
        seen.add((((1 << 61) | rng.getrandbits(61)) >> (64 - plen) << (64 - plen), plen))
    return [bytes((plen,)) + hi.to_bytes(8, "big")[: (plen + 7) >> 3] for hi, plen in sorted(seen)]


class DataSet:
    """The groups (the RIB's view) and the UPDATEs packed from them."""

    def __init__(
        self,
        n4: int,
        n6: int,
        seed: int,
        sample: int,
        group: tuple[int, int] = (10, 200),
        ipv4_lengths: str = "24",
    ) -> None:
        rng = random.Random(seed)
        self.n4, self.n6 = n4, n6
        if ipv4_lengths == "dfz":
            self.prefixes4 = _ipv4_prefixes_dfz(rng, n4)
        else:
            self.prefixes4 = _ipv4_prefixes(rng, n4)
        self.prefixes6 = _ipv6_prefixes(rng, n6)
        self.groups: list[tuple[tuple[int, int], AttrSet, list[bytes]]] = []
        for family, prefixes in ((IPV4_UNICAST, self.prefixes4), (IPV6_UNICAST, self.prefixes6)):
            i = 0
            while i < len(prefixes):
                size = rng.randint(*group)
                attrs = _random_attrs(rng, family == IPV6_UNICAST)
                self.groups.append((family, attrs, prefixes[i : i + size]))
                i += size
        self.attr_sets = [a for _f, a, _p in self.groups]
        ctx = Context()
        # (message, prefix count) per family
        self.msgs: dict[tuple[int, int], list[tuple[bytes, int]]] = {
            IPV4_UNICAST: [],
            IPV6_UNICAST: [],
        }
        for family, attrs, prefixes in self.groups:
            msgs = pack_announce(family, attrs, prefixes, ctx)
            if len(msgs) == 1:
                self.msgs[family].append((msgs[0], len(prefixes)))
            else:  # count each message's prefixes from its NLRI
                for m in msgs:
                    u = decode_message(m[18], m[HEADER_LEN:], Context(pool=AttrPool()))
                    k = len(u.nlri) + (len(u.mp_reach.nlri) if u.mp_reach else 0)
                    self.msgs[family].append((m, k))
        self.clear_caches()
        self.stream4 = b"".join(m for m, _k in self.msgs[IPV4_UNICAST])
        self.stream6 = b"".join(m for m, _k in self.msgs[IPV6_UNICAST])
        self.stream = self.stream4 + self.stream6
        # The sample for the slow decoders: the first messages of each family, in proportion.
        want4 = round(sample * n4 / (n4 + n6)) if n4 + n6 else 0
        self.sample_msgs: list[bytes] = []
        self.sample_count = 0
        for family, want in ((IPV4_UNICAST, want4), (IPV6_UNICAST, sample - want4)):
            got = 0
            for m, k in self.msgs[family]:
                if got >= want:
                    break
                self.sample_msgs.append(m)
                got += k
            self.sample_count += got
        self.sample_stream = b"".join(self.sample_msgs)

    def clear_caches(self) -> None:
        for a in self.attr_sets:
            a.cache.clear()

    def describe(self) -> dict:
        sizes = [len(m) for fam in self.msgs.values() for m, _k in fam]
        return {
            "ipv4_prefixes": self.n4,
            "ipv6_prefixes": self.n6,
            "attribute_sets": len(self.groups),
            "messages": len(sizes),
            "messages_ipv4": len(self.msgs[IPV4_UNICAST]),
            "messages_ipv6": len(self.msgs[IPV6_UNICAST]),
            "stream_bytes": len(self.stream),
            "mean_message_bytes": sum(sizes) / len(sizes) if sizes else 0,
            "max_message_bytes": max(sizes, default=0),
            "sample_messages": len(self.sample_msgs),
            "sample_prefixes": self.sample_count,
        }


# --- bgpd -----------------------------------------------------------------------------------


def reset_default_pool() -> None:
    """Empty bgpd's process-wide pool.

    Each decode run gets a fresh ``AttrPool`` so that it pays for decoding and interning every
    attribute set. Should the codec fall back to ``DEFAULT_POOL`` anyway (see
    :func:`pool_used`), emptying that one before each run keeps the measurement honest.
    """
    DEFAULT_POOL.by_raw.clear()
    DEFAULT_POOL.by_key.clear()


def pool_used(data: DataSet) -> str:
    """Which pool ``decode_message`` interns into when given a fresh, empty one."""
    reset_default_pool()
    pool = AttrPool()
    framer = Framer()
    ctx = Context(pool=pool)
    for msg_type, body in framer.feed(data.sample_stream):
        decode_message(msg_type, body, ctx)
    fresh, default = len(pool.by_raw), len(DEFAULT_POOL.by_raw)
    reset_default_pool()
    if fresh and not default:
        return "fresh"
    if default and not fresh:
        return "default"
    return f"unclear (fresh {fresh}, default {default})"


def bgpd_decode(stream: bytes, chunk: int) -> int:
    """Frame and decode ``stream`` as a session would, with a fresh pool; count prefixes."""
    return bgpd_decode_ctx(stream, chunk, Context(pool=AttrPool()))


def bgpd_decode_ctx(stream: bytes, chunk: int, ctx: Context, keep: list | None = None) -> int:
    """Frame and decode ``stream`` with ``ctx``; count prefixes. ``keep``: a list that gets
    every decoded attribute set (what a Loc-RIB does: the pool holds sets weakly, so sets
    nothing keeps are gone before the next run)."""
    framer = Framer()
    feed = framer.feed
    view = memoryview(stream)
    count = 0
    step = chunk or max(1, len(stream))
    for off in range(0, len(stream), step):
        for msg_type, body in feed(view[off : off + step]):
            update = decode_message(msg_type, body, ctx)
            if keep is not None:
                keep.append(update.attrs)
            count += len(update.nlri)
            mp = update.mp_reach
            if mp is not None:
                count += len(mp.nlri)
    if framer.error is not None or len(framer):
        raise AssertionError(f"framing failed: {framer.error!r}, {len(framer)} octets left")
    return count


def bgpd_encode(groups, ctx: Context) -> int:
    count = 0
    for family, attrs, prefixes in groups:
        pack_announce(family, attrs, prefixes, ctx)
        count += len(prefixes)
    return count


def check_bgpd(data: DataSet) -> None:
    """Untimed: decoding gives back exactly the prefixes and attribute sets packed, and
    encoding gives back exactly the stream."""
    framer = Framer()
    ctx = Context(pool=AttrPool())
    got4: list[bytes] = []
    got6: list[bytes] = []
    for msg_type, body in framer.feed(data.stream):
        u = decode_message(msg_type, body, ctx)
        if u.error is not None:
            raise AssertionError(f"decode error: {u.error!r}")
        got4 += u.nlri
        if u.mp_reach is not None:
            got6 += u.mp_reach.nlri
    reset_default_pool()
    if got4 != data.prefixes4 or got6 != data.prefixes6:
        raise AssertionError("decoded prefixes differ from the packed ones")
    data.clear_caches()
    ctx = Context()
    out = b"".join(b"".join(pack_announce(f, a, p, ctx)) for f, a, p in data.groups)
    data.clear_caches()
    if out != data.stream:
        raise AssertionError("encoding is not deterministic")


# --- scapy ----------------------------------------------------------------------------------


def load_scapy():
    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    try:
        import scapy.contrib.bgp as sbgp
    except ImportError as e:
        return None, str(e)
    sbgp.bgp_module_conf.use_2_bytes_asn = False  # our stream has four-octet AS_PATHs
    import scapy

    return sbgp, scapy.VERSION


def scapy_decode(sbgp, msgs: list[bytes]) -> int:
    header, update_cls, mp_reach_cls = sbgp.BGPHeader, sbgp.BGPUpdate, sbgp.BGPPAMPReachNLRI
    count = 0
    for raw in msgs:
        update = header(raw)[update_cls]
        count += len(update.nlri)
        for pa in update.path_attr:
            a = pa.attribute
            if isinstance(a, mp_reach_cls):
                count += len(a.nlri)
    return count


def sample_prefixes_text(data: DataSet) -> list[str]:
    """The sample's prefixes as text, in message order, as bgpd decodes them."""
    out: list[str] = []
    ctx = Context(pool=AttrPool())
    for m in data.sample_msgs:
        u = decode_message(m[18], m[HEADER_LEN:], ctx)
        out += [pfx.to_str(p, AFI_IPV4) for p in u.nlri]
        if u.mp_reach is not None:
            out += [pfx.to_str(p, AFI_IPV6) for p in u.mp_reach.nlri]
    return out


def check_scapy(sbgp, data: DataSet) -> None:
    """Untimed: scapy decodes every NLRI of the sample, and the same prefixes as bgpd."""
    expect = sample_prefixes_text(data)
    got: list[str] = []
    for raw in data.sample_msgs:
        update = sbgp.BGPHeader(raw)[sbgp.BGPUpdate]
        # Nothing may follow the NLRI. (scapy's COMMUNITIES layer decodes the first community
        # and leaves the others as Raw inside the attribute: its design, not a failure.)
        if len(update.payload):
            raise AssertionError("scapy left undecoded bytes after the NLRI")
        got += [n.prefix for n in update.nlri]
        for pa in update.path_attr:
            if isinstance(pa.attribute, sbgp.BGPPAMPReachNLRI):
                got += [n.prefix for n in pa.attribute.nlri]
    if got != expect:
        raise AssertionError("scapy's prefixes differ from bgpd's")


# --- ExaBGP ---------------------------------------------------------------------------------


def load_exabgp():
    """Import ExaBGP's parser; return ``(make_negotiated, unpack, reset_caches, version)``."""
    try:
        from exabgp.bgp.message import Update
        from exabgp.bgp.message.direction import Direction
        from exabgp.bgp.message.open.asn import ASN
        from exabgp.bgp.message.open.routerid import RouterID
        from exabgp.bgp.message.update.attribute.attribute import Attribute
        from exabgp.bgp.message.update.attribute.community.initial.community import Community
        from exabgp.bgp.neighbor import Neighbor
        from exabgp.configuration.check import _negotiated
        from exabgp.environment import getenv
        from exabgp.logger import log
        from exabgp.protocol.family import AFI, SAFI
        from exabgp.protocol.ip import IP
        from exabgp.util.cache import Cache
        from exabgp.version import version
    except ImportError as e:
        return None, None, None, str(e)

    # ExaBGP's logger must be set up before it parses; the default environment is what the
    # daemon runs with (INFO, parser logging off: the debug calls are made and return early).
    log.init(getenv())

    def make_negotiated():
        # As ExaBGP's own `exabgp decode` / configuration check does: both OPENs carry the
        # same capabilities (four-octet AS on by default, the two families, no ADD-PATH).
        n = Neighbor()
        n["router-id"] = RouterID("192.0.2.1")
        n["local-as"] = ASN(64512)
        n["peer-as"] = ASN(64513)
        n["local-address"] = IP.create("127.0.0.1")
        n["peer-address"] = IP.create("127.0.0.2")
        n.add_family((AFI.ipv4, SAFI.unicast))
        n.add_family((AFI.ipv6, SAFI.unicast))
        neg = _negotiated(n)
        if not neg.asn4:
            raise AssertionError("ExaBGP did not negotiate four-octet AS")
        return neg

    direction = Direction.IN

    def unpack(body, negotiated):
        return Update.unpack_message(body, direction, negotiated)

    well_known = dict(Community.cache)

    def reset_caches():
        # ExaBGP keeps process-wide caches of decoded attribute values (keyed by their wire
        # bytes) and of communities. Each run starts with them as a new process has them,
        # as bgpd starts each run with an empty pool.
        for code in list(Attribute.cache):
            Attribute.cache[code] = Cache()
        Community.cache.clear()
        Community.cache.update(well_known)

    return make_negotiated, unpack, reset_caches, version


def check_exabgp(make_negotiated, unpack, data: DataSet) -> int:
    """Untimed: ExaBGP decodes the same prefixes as bgpd. Returns its NLRI object count.

    With a 32-octet IPv6 next hop (global + link-local) ExaBGP makes one NLRI object per
    next hop, so it returns each such prefix twice, one after the other; we compare the
    distinct prefixes per message and time its parse as it is (it does that extra work).
    """
    neg = make_negotiated()
    got: list[str] = []
    objects = 0
    for m in data.sample_msgs:
        nlris = unpack(m[HEADER_LEN:], neg).nlris
        objects += len(nlris)
        got += dict.fromkeys(str(n.cidr) for n in nlris)
    if got != sample_prefixes_text(data):
        raise AssertionError("ExaBGP's prefixes differ from bgpd's")
    return objects


def exabgp_decode(unpack, bodies: list[bytes], negotiated) -> int:
    """Returns the number of NLRI objects ExaBGP made."""
    count = 0
    for body in bodies:
        count += len(unpack(body, negotiated).nlris)
    return count


# --- the run --------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ipv4", type=int, default=1_000_000, help="IPv4 prefixes (1M)")
    ap.add_argument("--ipv6", type=int, default=200_000, help="IPv6 prefixes (200k)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each bgpd measurement (5)")
    ap.add_argument(
        "--slow-repeat", type=int, default=3, help="runs of each scapy/ExaBGP measurement (3)"
    )
    ap.add_argument(
        "--sample", type=int, default=30_000, help="prefixes decoded by scapy and ExaBGP (30k)"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--ipv4-lengths",
        choices=("24", "dfz"),
        default="24",
        help="IPv4 prefix lengths: all /24 (default), or a DFZ-like mix of /12../24 (60%% /24)",
    )
    ap.add_argument(
        "--group",
        default="10-200",
        help="prefixes per attribute set, MIN-MAX, uniform (10-200)",
    )
    ap.add_argument(
        "--chunk", type=int, default=65536, help="octets per Framer.feed call; 0: all at once"
    )
    ap.add_argument("--no-scapy", action="store_true")
    ap.add_argument("--no-exabgp", action="store_true")
    ap.add_argument("--no-check", action="store_true", help="skip the correctness checks")
    ap.add_argument(
        "--profile", action="store_true", help="pyinstrument over bgpd's decode and encode"
    )
    ap.add_argument("--cprofile", action="store_true", help="cProfile (by tottime), likewise")
    ap.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    args = ap.parse_args(argv)
    gmin, _, gmax = args.group.partition("-")
    group = (int(gmin), int(gmax or gmin))

    common.warn_if_busy()
    print(
        f"generating {args.ipv4:,} IPv4 + {args.ipv6:,} IPv6 prefixes (seed {args.seed})...",
        file=sys.stderr,
    )
    t0 = time.perf_counter()
    data = DataSet(args.ipv4, args.ipv6, args.seed, args.sample, group, args.ipv4_lengths)
    gen_s = time.perf_counter() - t0
    info = data.describe()
    print(
        f"  {info['attribute_sets']:,} attribute sets, {info['messages']:,} UPDATEs, "
        f"{info['stream_bytes'] / 2**20:.1f} MiB, mean {info['mean_message_bytes']:.0f} octets "
        f"per UPDATE ({gen_s:.1f} s); RSS {common.fmt_bytes(common.current_rss_bytes())}",
        file=sys.stderr,
    )
    if not args.no_check:
        check_bgpd(data)
        print("  bgpd round trip checked", file=sys.stderr)
    pool = pool_used(data)
    if pool != "fresh":
        print(
            f"  note: given a fresh AttrPool, decode_update interned into {pool} pool "
            "(an empty AttrPool is falsy and `ctx.pool or DEFAULT_POOL` skips it); "
            "DEFAULT_POOL is emptied before every run instead",
            file=sys.stderr,
        )

    rep, slow = args.repeat, args.slow_repeat
    total = args.ipv4 + args.ipv6
    results: list[common.Measurement] = []
    versions = {"python": sys.version.split()[0]}

    def decode_stream(stream):
        return lambda: bgpd_decode(stream, args.chunk)

    fresh = reset_default_pool
    results.append(
        common.measure(
            "bgpd decode, IPv4+IPv6",
            decode_stream(data.stream),
            repeat=rep,
            setup=fresh,
            units=total,
        )
    )
    if args.ipv4:
        results.append(
            common.measure(
                "bgpd decode, IPv4 only",
                decode_stream(data.stream4),
                repeat=rep,
                setup=fresh,
                units=args.ipv4,
            )
        )
    if args.ipv6:
        results.append(
            common.measure(
                "bgpd decode, IPv6 only",
                decode_stream(data.stream6),
                repeat=rep,
                setup=fresh,
                units=args.ipv6,
            )
        )
    # The same table again with every attribute set already interned (a route refresh, or a
    # second peer sending the same paths): the per-prefix cost alone. The first decode's sets
    # are kept alive, as the routes that use them keep them in the daemon (the pool holds
    # sets weakly: without this every run decoded every block again).
    warm_ctx = Context(pool=AttrPool())
    held: list = []
    bgpd_decode_ctx(data.stream, args.chunk, warm_ctx, held)
    results.append(
        common.measure(
            "bgpd decode, IPv4+IPv6, sets interned",
            lambda: bgpd_decode_ctx(data.stream, args.chunk, warm_ctx),
            repeat=rep,
            units=total,
            note="attribute sets already in the pool",
        )
    )
    del held
    reset_default_pool()
    enc_ctx = Context()
    results.append(
        common.measure(
            "bgpd encode, IPv4+IPv6",
            lambda: bgpd_encode(data.groups, enc_ctx),
            repeat=rep,
            setup=data.clear_caches,
            units=total,
        )
    )
    data.clear_caches()

    sample_name = "bgpd decode, sample"
    results.append(
        common.measure(
            sample_name,
            decode_stream(data.sample_stream),
            repeat=rep,
            setup=fresh,
            units=data.sample_count,
            baseline=sample_name,
            note="the messages scapy and ExaBGP decode",
        )
    )

    if not args.no_scapy:
        sbgp, ver = load_scapy()
        if sbgp is None:
            print(f"scapy not available: {ver}", file=sys.stderr)
        else:
            versions["scapy"] = ver
            if not args.no_check:
                check_scapy(sbgp, data)
                print("  scapy's decode checked against bgpd's", file=sys.stderr)
            results.append(
                common.measure(
                    f"scapy {ver} decode, sample",
                    lambda: scapy_decode(sbgp, data.sample_msgs),
                    repeat=slow,
                    units=data.sample_count,
                    baseline=sample_name,
                    note="BGPHeader(raw) per message, pre-split",
                )
            )

    if not args.no_exabgp:
        make_negotiated, unpack, reset_exabgp, ver = load_exabgp()
        if make_negotiated is None:
            print(f"ExaBGP not available: {ver}", file=sys.stderr)
        else:
            versions["exabgp"] = ver
            objects = None
            if not args.no_check:
                objects = check_exabgp(make_negotiated, unpack, data)
                print("  ExaBGP's decode checked against bgpd's", file=sys.stderr)
            bodies = [m[HEADER_LEN:] for m in data.sample_msgs]
            neg = [None]

            def fresh_negotiated():
                reset_exabgp()
                neg[0] = make_negotiated()

            def run_exabgp():
                # Timed in prefixes; its NLRI objects are counted and checked.
                n = exabgp_decode(unpack, bodies, neg[0])
                if objects is not None and n != objects:
                    raise AssertionError(f"ExaBGP made {n} NLRI objects, {objects} before")
                return data.sample_count

            results.append(
                common.measure(
                    f"ExaBGP {ver} decode, sample",
                    run_exabgp,
                    repeat=slow,
                    setup=fresh_negotiated,
                    units=data.sample_count,
                    baseline=sample_name,
                    note="Update.unpack_message per body, pre-split",
                )
            )
            results[-1].extra["nlri_objects"] = objects

    by_name = {m.name: m for m in results}
    print()
    print(
        f"bgpd codec: {args.ipv4:,} IPv4 {'/24' if args.ipv4_lengths == '24' else 'DFZ-like'} + "
        f"{args.ipv6:,} IPv6 prefixes, "
        f"{info['attribute_sets']:,} attribute sets, {info['messages']:,} UPDATEs "
        f"({info['stream_bytes'] / 2**20:.1f} MiB); sample {data.sample_count:,} prefixes in "
        f"{len(data.sample_msgs):,} UPDATEs; medians of {rep} runs ({slow} for scapy/ExaBGP)"
    )
    print()
    rows = common.rate_rows(results)
    headers = common.rate_headers("prefixes", "bgpd is")
    table = common.print_table(headers, rows)
    md = common.markdown_table(headers, rows)

    # The project's targets.
    print()
    targets = {}
    v4 = by_name.get("bgpd decode, IPv4 only")
    mix = by_name["bgpd decode, IPv4+IPv6"]
    if v4 is not None:
        t1m = v4.time_for(1_000_000)
        measured = "measured" if v4.units == 1_000_000 else f"extrapolated from {v4.units:,}"
        targets["decode_1M_ipv4_s"] = t1m
        print(
            f"decoding a 1M-prefix IPv4 table: {t1m:.2f} s ({measured}; target < 1 s: "
            f"{'met' if t1m < 1 else 'NOT met'})"
        )
    print(f"decoding 1M prefixes of the IPv4+IPv6 mix: {mix.time_for(1_000_000):.2f} s")
    for key, label, goal in (("scapy", "scapy", 50), ("exabgp", "ExaBGP", 5)):
        m = next((r for r in results if r.name.lower().startswith(key)), None)
        if m is None:
            continue
        ratio = by_name[sample_name].rate / m.rate
        targets[f"vs_{key}"] = ratio
        print(
            f"bgpd decodes {ratio:.1f}× as fast as {label} (target ≥ {goal}×: "
            f"{'met' if ratio >= goal else 'NOT met'})"
        )
    print(
        f"peak RSS {common.fmt_bytes(common.peak_rss_bytes())}, "
        f"CPU {common.cpu_seconds():.1f} s in all"
    )
    if args.markdown:
        print()
        print(md)

    profiles = {}
    if args.profile:
        for label, fn, setup in (
            ("decode", decode_stream(data.stream), reset_default_pool),
            ("encode", lambda: bgpd_encode(data.groups, enc_ctx), data.clear_caches),
        ):
            if setup:
                setup()
            text = common.profile_pyinstrument(fn)
            profiles[f"pyinstrument_{label}"] = text
            print(f"\n=== pyinstrument: bgpd {label}, IPv4+IPv6 ===\n{text}")
    if args.cprofile:
        for label, fn, setup in (
            ("decode", decode_stream(data.stream), reset_default_pool),
            ("encode", lambda: bgpd_encode(data.groups, enc_ctx), data.clear_caches),
        ):
            if setup:
                setup()
            text = common.profile_cprofile(fn)
            profiles[f"cprofile_{label}"] = text
            print(f"\n=== cProfile (tottime): bgpd {label}, IPv4+IPv6 ===\n{text}")

    path = common.write_results(
        "codec",
        {
            "config": vars(args),
            "pool_used_by_decode": pool,
            "git_paths": ["bgpd"],
            "versions": versions,
            "data": info,
            "generation_s": gen_s,
            "results": [m.to_dict() for m in results],
            "targets": targets,
            "table": table,
            "table_markdown": md,
            **({"profiles": profiles} if profiles else {}),
        },
    )
    print(f"\nresults written to {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

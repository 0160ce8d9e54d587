"""Policy evaluation throughput: an attr-only policy with caching against a prefix-list policy.

The input: ``--prefixes`` routes (IPv4 /24s and the /26 blocks and /32s of a Calico pod range,
plus some IPv6 /48../64), one interned attribute set per ``--group`` prefixes (seeded RNG;
AS paths of 1-6 ASNs, communities, sometimes large communities). Measured, each several times,
median quoted, in evaluations (one route through one policy) per second:

- attr-only, ``evaluate_cached``, warm: an AS-path/community policy with set actions
  (``attr_only`` true) over every route, the verdicts already in the sets' caches — the steady
  state of an export group re-sending a table;
- attr-only, ``evaluate_cached``, cold: the same with every set's cache emptied before each run
  (one real evaluation per set, a cache hit for the rest);
- attr-only, ``evaluate``: the same policy without the cache, for reference;
- prefix-list, ``evaluate``: a Calico-style export policy plus a ``--entries``-entry prefix
  list of assorted lengths (``attr_only`` false: one evaluation per route); its set block is
  still computed once per set.

Run: ``.venv/bin/python bench/policy.py [--help]``. Prints a table; ``--save`` also writes
``bench/results/policy-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

from bgpd.policy import RouteInfo, compile_policy  # noqa: E402
from bgpd.wire import AttrSet, intern  # noqa: E402
from bgpd.wire import prefix as pfx  # noqa: E402
from bgpd.wire.constants import AS_SEQUENCE, IPV4_UNICAST, IPV6_UNICAST  # noqa: E402

ATTR_ONLY = {
    "default": "accept",
    "terms": [
        {"name": "bogon-as", "match": {"as_path": ["_6450[0-9]_", "_23456_"]}, "action": "reject"},
        {
            "name": "blackholed",
            "match": {"community": ["65000:666", "no-export"]},
            "action": "reject",
        },
        {
            "name": "customers",
            "match": {"community": ["65000:100-199", "65100:*"], "origin": ["igp", "egp"]},
            "set": {"local_pref": 200, "community_remove": ["65100:*"]},
            "action": "next",
        },
        {
            "name": "long-paths",
            "match": {"as_path": ["^([0-9]+_){5,}"]},
            "set": {"med": 100, "as_path_prepend": 1},
            "action": "accept",
        },
    ],
}


def prefix_list_policy(entries: int, rng: random.Random) -> dict:
    """A Calico export policy plus a prefix list of ``entries`` assorted entries."""
    plist = []
    while len(plist) < entries:
        if rng.random() < 0.8:
            length = rng.choice((8, 12, 16, 18, 20, 22, 23, 24))
            net = ipaddress.ip_network((rng.getrandbits(32), length), strict=False)
            ge = rng.randint(length, 24)
            plist.append(f"{net} ge {ge} le 24")
        else:
            length = rng.choice((29, 32, 36, 40, 44, 48))
            net = ipaddress.ip_network(
                ((0x20010DB8 << 96) | rng.getrandbits(96), length), strict=False
            )
            plist.append(f"{net} le 64")
    return {
        "default": "reject",
        "terms": [
            {"name": "no-host", "match": {"prefix": ["10.244.0.0/16 ge 32"]}, "action": "reject"},
            {
                "name": "pod-blocks",
                "match": {"prefix": ["10.244.0.0/16 ge 26 le 26"], "source": ["static"]},
                "set": {"community_add": ["65000:100"]},
            },
            {
                "name": "announced",
                "match": {"prefix": plist},
                "set": {"local_pref": 150},
            },
        ],
    }


def make_routes(n: int, group: int, seed: int):
    """``n`` (attrs, prefix, family) triples, a new attribute set every ``group`` prefixes."""
    rng = random.Random(seed)
    routes = []
    attrs = None
    for i in range(n):
        if i % group == 0:
            path = tuple(rng.randint(1, 65535) for _ in range(rng.randint(1, 6)))
            comms = tuple(
                (rng.choice((65000, 65100, 64999)) << 16)
                | (rng.randint(0, 200) if rng.random() > 0.03 else 666)
                for _ in range(rng.randint(0, 4))
            )
            large = ((64512, rng.randint(1, 5), rng.randint(1, 5)),) if rng.random() < 0.2 else ()
            attrs = intern(
                AttrSet(
                    origin=rng.choice((0, 0, 0, 2)),
                    as_path=((AS_SEQUENCE, path),),
                    next_hop=bytes((192, 0, 2, rng.randint(1, 254))),
                    med=rng.choice((None, 0, 10)),
                    communities=comms,
                    large_communities=large,
                )
            )
        r = rng.random()
        if r < 0.7:
            p = pfx.from_network(ipaddress.ip_network((rng.getrandbits(24) << 8, 24)))
            fam = IPV4_UNICAST
        elif r < 0.85:
            p = pfx.from_network(
                ipaddress.ip_network(((10 << 24) | (244 << 16) | (rng.getrandbits(10) << 6), 26))
            )
            fam = IPV4_UNICAST
        elif r < 0.9:
            p = pfx.from_network(
                ipaddress.ip_network(((10 << 24) | (244 << 16) | rng.getrandbits(16), 32))
            )
            fam = IPV4_UNICAST
        else:
            length = rng.choice((48, 56, 64))
            net = ipaddress.ip_network(
                ((0x20010DB8 << 96) | (rng.getrandbits(32) << 64), length), strict=False
            )
            p = pfx.from_network(net)
            fam = IPV6_UNICAST
        routes.append((attrs, p, fam))
    return routes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prefixes", type=int, default=100_000, help="routes evaluated per run (100k)")
    ap.add_argument("--group", type=int, default=50, help="prefixes per attribute set (50)")
    ap.add_argument("--entries", type=int, default=200, help="prefix-list entries (200)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each measurement (5)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--save", action="store_true", help="write bench/results/policy-*.json")
    ap.add_argument("--cprofile", action="store_true", help="cProfile the prefix-list run")
    args = ap.parse_args(argv)

    common.warn_if_busy()
    routes = make_routes(args.prefixes, args.group, args.seed)
    sets = list({id(a): a for a, _p, _f in routes}.values())
    rng = random.Random(args.seed + 1)
    attr_only = compile_policy("attr-only", ATTR_ONLY)
    plist = compile_policy("prefix-list", prefix_list_policy(args.entries, rng))
    assert attr_only.attr_only and not plist.attr_only
    route = RouteInfo("static", local_as=65000, next_hop_self=b"\xc0\x00\x02\x01")
    print(
        f"{len(routes):,} routes, {len(sets):,} attribute sets, "
        f"prefix list of {args.entries} entries",
        file=sys.stderr,
    )

    def run_cached() -> int:
        ev = attr_only.evaluate_cached
        n = 0
        for a, p, f in routes:
            ev(a, p, f, route, "bench")
            n += 1
        return n

    def run_plain(policy):
        def run() -> int:
            ev = policy.evaluate
            n = 0
            for a, p, f in routes:
                ev(a, p, f, route)
                n += 1
            return n

        return run

    def clear_caches() -> None:
        for a in sets:
            a.cache.clear()

    def verdicts(policy) -> tuple[int, int]:
        acc = sum(policy.evaluate(a, p, f, route) is not None for a, p, f in routes)
        return acc, len(routes) - acc

    # correctness: the cache gives what evaluate gives
    for a, p, f in routes[:2000]:
        assert attr_only.evaluate_cached(a, p, f, route, "check") is attr_only.evaluate(
            a, p, f, route
        )

    n = len(routes)
    rep = args.repeat
    unit = "evaluations"
    results = [
        common.measure(
            "attr-only, evaluate_cached (warm)",
            run_cached,
            repeat=rep,
            units=n,
            unit=unit,
            setup=run_cached,
        ),
        common.measure(
            "attr-only, evaluate_cached (cold)",
            run_cached,
            repeat=rep,
            units=n,
            unit=unit,
            setup=clear_caches,
            baseline="attr-only, evaluate_cached (warm)",
        ),
        common.measure(
            "attr-only, evaluate (no cache)",
            run_plain(attr_only),
            repeat=rep,
            units=n,
            unit=unit,
            baseline="attr-only, evaluate_cached (warm)",
        ),
        common.measure(
            f"prefix-list ({args.entries} entries), evaluate",
            run_plain(plist),
            repeat=rep,
            units=n,
            unit=unit,
            baseline="attr-only, evaluate_cached (warm)",
        ),
    ]
    print()
    common.print_rate_table(results, unit=unit, ratio="warm cached is")
    for name, p in (("attr-only", attr_only), ("prefix-list", plist)):
        acc, rej = verdicts(p)
        print(f"{name}: {acc:,} accepted, {rej:,} rejected")
    if args.cprofile:
        print(common.profile_cprofile(run_plain(plist)))
    if args.save:
        path = common.write_results(
            "policy",
            {
                "routes": n,
                "attribute_sets": len(sets),
                "entries": args.entries,
                "measurements": results,
            },
        )
        print(f"results: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

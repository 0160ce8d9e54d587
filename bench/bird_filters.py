"""BIRD filter cost per route: bgpd's compiled Calico filters, and BIRD 1.6.8's own.

A Calico route reflector runs ``calico_export_to_bgp_peers`` (inside each peer's export
filter) on every route for every client, and ``calico_kernel_programming`` on every best
route; both read ``net``, so no per-attribute-set cache helps. This measures the per-route
cost of bgpd's compiled programs (``bgpd.bird.program``) on a Calico-like table:

- ``--prefixes`` routes: 80 % workload /32s learned from the kernel (``dev caliX``, metric
  1024; a few 512), half of them inside this node's blocks (rejected by ``calico_aggr``), half
  borrowed IPs (accepted); 15 % /26 blocks of other nodes learned over BGP (re-exported by a
  reflector); 5 % static blackholes of this node's blocks;
- the configuration: a golden file of confd's corpus (``--case``, default
  ``explicit_peering/route_reflector``; from ../shared/corpora), its first BGP protocol's
  export and import filters and its kernel filter;
- measured, median of ``--repeat`` runs: the export filter, the import filter (attr-only:
  with and without the per-set cache), the kernel filter.

With ``--bird`` (needs BIRD 1.6.8: tools/bird16.sh) the same export filter body runs inside
BIRD on as many static routes (``show route filter F count``), for the ratio; BIRD's figure
includes walking its table, bgpd's only the filter call.

Run: ``.venv/bin/python bench/bird_filters.py [--help]``; ``--save`` writes
``bench/results/bird_filters-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

from bgpd.bird import RouteView, compile_filter, load  # noqa: E402
from bgpd.bird.model import REJECT  # noqa: E402
from bgpd.wire import AttrSet, intern  # noqa: E402
from bgpd.wire import prefix as pfx  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared/corpora/calico-confd/confd/tests/compiled_templates"


def make_routes(cfg, n: int, seed: int) -> list[RouteView]:
    """Calico-like routes, as RouteViews: workload /32s, remote blocks, local blocks."""
    rng = random.Random(seed)
    static = cfg.of_kind("static")
    blocks = [r for s in static for r in s.routes if r.length < 32] or []
    local_blocks = [(int(r.prefix), r.length) for r in blocks]
    empty = intern(AttrSet())
    routes = []
    for i in range(n):
        x = rng.random()
        if x < 0.8:
            if local_blocks and rng.random() < 0.5:
                base, length = rng.choice(local_blocks)
                addr = base | rng.getrandbits(32 - length)
            else:
                addr = (192 << 24) | (168 << 16) | rng.getrandbits(16)
            metric = 512 if rng.random() < 0.02 else 1024
            p = pfx.from_str(
                f"{addr >> 24}.{(addr >> 16) & 255}.{(addr >> 8) & 255}.{addr & 255}/32"
            )
            routes.append(
                RouteView(p, empty, "kernel", ifname=f"cali{i % 5000:x}", krt_metric=metric)
            )
        elif x < 0.95:
            addr = (192 << 24) | (168 << 16) | (rng.getrandbits(10) << 6)
            nh = bytes((10, 192, 0, rng.randint(3, 250)))
            attrs = intern(
                AttrSet(
                    origin=0, as_path=(), next_hop=nh, local_pref=2147482623 + rng.randint(0, 1)
                )
            )
            p = pfx.from_str(f"192.168.{(addr >> 8) & 255}.{addr & 255}/26")
            routes.append(RouteView(p, attrs, "bgp", ifname="eth0"))
        else:
            if local_blocks:
                base, length = rng.choice(local_blocks)
            else:
                base, length = (10 << 24), 26
            p = bytes((length,)) + base.to_bytes(4, "big")[: (length + 7) // 8]
            routes.append(RouteView(p, empty, "static", dest="blackhole"))
    return routes


def bird_measure(sbin: Path, body: str, defs: str, prefixes: list[str], repeat: int) -> tuple:
    """BIRD's time for ``show route filter F count`` over static routes to ``prefixes``."""
    n = len(prefixes)
    lines = [f"  route {p} blackhole;\n" for p in prefixes]
    with tempfile.TemporaryDirectory(prefix="bf-bench-") as d:
        cfg = Path(d) / "bird.cfg"
        sock = Path(d) / "bird.ctl"
        cfg.write_text(
            "router id 10.192.0.2;\nprotocol device {}\n"
            + defs
            + f"\nfilter bf_export {{{body}}}\n"
            + "protocol static bf_static {\n"
            + "".join(lines)
            + "}\n"
        )
        proc = subprocess.Popen([str(sbin / "bird"), "-f", "-c", str(cfg), "-s", str(sock)])
        try:
            deadline = time.monotonic() + 60
            while not sock.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            birdc = str(sbin / "birdc")
            while True:  # wait until the table is full
                out = subprocess.run(
                    [birdc, "-s", str(sock), "show route count"], capture_output=True, text=True
                ).stdout
                if f"{n} of {n} routes" in out or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            walls = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                subprocess.run(
                    [birdc, "-s", str(sock), "show route filter bf_export count"],
                    capture_output=True,
                    text=True,
                )
                walls.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            subprocess.run([birdc, "-s", str(sock), "show status"], capture_output=True)
            overhead = time.perf_counter() - t0
        finally:
            proc.terminate()
            proc.wait()
    return walls, overhead


def inline_filter_text(text: str, which: str) -> str:
    m = re.search(rf"\b{which} filter \{{", text)
    depth, i = 1, m.end()
    while depth:
        depth += (text[i] == "{") - (text[i] == "}")
        i += 1
    return text[m.end() : i - 1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prefixes", type=int, default=100_000, help="routes per run (100k)")
    ap.add_argument("--case", default="explicit_peering/route_reflector", help="golden case")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each measurement (5)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bird", action="store_true", help="also time BIRD 1.6.8 (tools/bird16.sh)")
    ap.add_argument("--save", action="store_true", help="write bench/results/bird_filters-*.json")
    ap.add_argument("--cprofile", action="store_true", help="cProfile the export filter run")
    args = ap.parse_args(argv)

    main_file = CORPUS / args.case / "bird.cfg"
    if not main_file.exists():
        print(f"{main_file} is absent (the corpus is read from ../shared/corpora)", file=sys.stderr)
        return 2
    common.warn_if_busy()
    cfg = load(str(main_file))
    bgp = next(p for p in cfg.protocols if p.kind == "bgp" and p.export_filter != REJECT)
    export = compile_filter(bgp.export_filter, False)
    imp = compile_filter(bgp.import_filter, False, export=False)
    kernel = compile_filter(cfg.filters["calico_kernel_programming"], False)
    routes = make_routes(cfg, args.prefixes, args.seed)
    bgp_routes = [r for r in routes if r.source == "bgp"]
    n = len(routes)
    print(
        f"{main_file.relative_to(CORPUS)}: {n:,} routes ({len(bgp_routes):,} from BGP), "
        f"export filter of {bgp.name}",
        file=sys.stderr,
    )
    accepted = sum(export.run(r).accepted for r in routes)
    print(f"export accepts {accepted:,} of {n:,}", file=sys.stderr)

    def run(program, rs):
        def fn() -> int:
            go = program.run
            for r in rs:
                go(r)
            return len(rs)

        return fn

    def clear() -> None:
        for r in bgp_routes:
            r.attrs.cache.clear()

    rep = args.repeat
    ms = [
        common.measure(
            "export (calico_export_to_bgp_peers)", run(export, routes), repeat=rep, unit="routes"
        ),
        common.measure(
            "kernel (calico_kernel_programming)", run(kernel, routes), repeat=rep, unit="routes"
        ),
        common.measure(
            "import, warm per-set cache", run(imp, bgp_routes), repeat=rep, unit="routes"
        ),
        common.measure(
            "import, cold", run(imp, bgp_routes), repeat=rep, setup=clear, unit="routes"
        ),
    ]
    extra = {}
    if args.bird:
        sbin = Path(os.environ.get("BGPD_BIRD16_DIR", ROOT / ".cache/bird16")) / "usr/sbin"
        body = inline_filter_text(main_file.read_text(), "export")
        # the functions the filter calls, as the golden defines them
        text = main_file.read_text()
        head = (
            text[: text.index("# BGP Protocol Configurations")]
            if "# BGP Protocol" in text
            else text
        )
        aggr = (main_file.parent / "bird_aggr.cfg").read_text()
        ipam = (main_file.parent / "bird_ipam.cfg").read_text()
        defs = _functions(head) + _functions(aggr) + _functions(ipam)
        unique = list(dict.fromkeys(pfx.to_str(r.prefix, 1) for r in routes))
        walls, overhead = bird_measure(sbin, body, defs, unique, rep)
        n_bird = len(unique)
        walls.sort()
        med = walls[len(walls) // 2]
        m = common.Measurement("BIRD 1.6.8: show route filter ... count", n_bird, "routes")
        m.wall = walls
        m.cpu = walls
        ms.append(m)
        ms[0].baseline = m.name
        extra["bird_cli_overhead_s"] = overhead
        print(
            f"BIRD: median {med:.3f} s for {n:,} routes (CLI round trip {overhead * 1e3:.1f} ms)",
            file=sys.stderr,
        )
    common.print_rate_table(ms, per=1_000_000, unit="routes")
    for m in ms:
        print(f"{m.name}: {1e6 / m.rate:.2f} µs per route", file=sys.stderr)
    if args.cprofile:
        print(common.profile_cprofile(run(export, routes)))
    if args.save:
        path = common.write_results(
            "bird_filters",
            {
                "case": args.case,
                "prefixes": n,
                "measurements": [m.to_dict() for m in ms],
                "machine": common.machine_info(),
                "git": common.git_info(),
                **extra,
            },
        )
        print(f"results: {path}", file=sys.stderr)
    return 0


def _functions(text: str) -> str:
    """The ``function`` definitions of a file (brace-matched)."""
    out = []
    for m in re.finditer(r"^function [^\n]*\n?\{?", text, re.M):
        start = m.start()
        i = text.index("{", start)
        depth, i = 1, i + 1
        while depth:
            depth += (text[i] == "{") - (text[i] == "}")
            i += 1
        out.append(text[start:i] + "\n")
    return "".join(out)


if __name__ == "__main__":
    sys.exit(main())

"""Seed ``fuzz/corpus/<target>/`` from the fixtures (run again when the fixtures change).

    python fuzz/make_corpus.py

Seeds, named by their SHA-1 as libFuzzer names corpus files:

* ``decoder``: every message of the real-peer captures (``tests/fixtures/peers/*.txt``, lines
  ``in <hex>``/``out <hex>``) and each capture's whole ``in`` stream, with the context byte
  of the session that carried it; every codec fixture of ``tests/wire/test_fixtures.py`` and
  every seed of ``tests/wire/test_fuzz.py`` with its context.
* ``fsm``: each capture's ``in`` stream after the OPEN (what a real peer sends once the session
  is up), with the session variant closest to the capture's, plus the codec fixtures' UPDATEs.
* ``fsm_ops``: hand-written programs that bring a session up and exercise it.
"""

import hashlib
import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bgpd.wire import Context  # noqa: E402
from bgpd.wire.constants import IPV4_UNICAST, IPV6_UNICAST  # noqa: E402


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def decoder_selector(ctx: Context) -> int:
    s = 0 if ctx.as4 else 1
    s |= 2 if ctx.ibgp else 0
    s |= 4 if ctx.extended_message else 0
    s |= 8 if IPV4_UNICAST in ctx.add_path_rx else 0
    s |= 16 if IPV6_UNICAST in ctx.add_path_rx else 0
    return s


def fsm_selector(ctx: Context) -> int:
    s = 0 if ctx.as4 else 1
    s |= 2 if ctx.ibgp else 0
    s |= 4 if ctx.extended_message else 0
    s |= 8 if ctx.add_path_rx else 0
    return s


def captures():
    """(name, contexts, [(direction, wire)]) per real-peer capture."""
    pc = _module(ROOT / "tests" / "wire" / "test_peer_captures.py", "_peer_captures")
    for path in pc.FILES:
        header, messages = pc.read_capture(path)
        yield path.stem, pc.contexts(header, messages), messages


def build() -> dict[str, list[bytes]]:
    seeds: dict[str, list[bytes]] = {"decoder": [], "fsm": [], "fsm_ops": []}
    dec, fsm = seeds["decoder"], seeds["fsm"]
    for _name, ctxs, messages in captures():
        for direction, wire in messages:
            dec.append(bytes((decoder_selector(ctxs[direction]), 0)) + wire)
        stream = b"".join(w for d, w in messages if d == "in")
        dec.append(bytes((decoder_selector(ctxs["in"]), 2)) + stream)
        after_open = b"".join(w for d, w in messages if d == "in" and w[18] != 1)
        if after_open:
            fsm.append(bytes((fsm_selector(ctxs["in"]), 0)) + after_open)
    fx = _module(ROOT / "tests" / "wire" / "test_fixtures.py", "_fixtures")
    for f in fx.FIXTURES:
        dec.append(bytes((decoder_selector(f.ctx), 0)) + f.wire)
        if f.wire[18] == 2:
            fsm.append(bytes((fsm_selector(f.ctx), 3)) + f.wire)
    fz = _module(ROOT / "tests" / "wire" / "test_fuzz.py", "_wire_fuzz")
    for wire in fz.SEEDS:
        dec.append(b"\x00\x00" + wire)
    seeds["fsm_ops"] = ops_programs()
    return seeds


def ops_programs() -> list[bytes]:
    """Programs for ``targets.fsm_ops``: pairs of (op, arg) octets (see the op numbers there)."""
    start, made_out, made_in, failed, dump = (0, 0), (2, 1), (2, 0), (3, 0), (4, 0)
    timer_next, timer_10 = (5, 1), (5, 10)
    open_ok, keepalive = (6, 0), (7, 1)
    update, withdraw, v6, eor = (9, 0), (9, 1), (9, 2), (9, 3)
    cease, rr, send_upd, send_rr = (10, 0), (11, 0), (12, 0), (13, 0)
    up = [start, made_out, open_ok, keepalive]
    programs = [
        up + [update, withdraw, v6, eor, rr, send_upd, send_rr, timer_10, keepalive, cease],
        up + [timer_next, timer_next, timer_next, timer_next],
        up + [failed, timer_next, made_out, open_ok, keepalive, (1, 2)],
        [start, made_in, open_ok, dump, timer_next, made_out],
        [start, (6, 6), timer_next, made_out, (6, 7), keepalive],
        up + [made_in, (14, 7), (14, 8), (14, 18), (14, 22), update],
        up + [(8, 5), 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, (15, 9), 1, 2, 3, 4, 5, 6, 7, 8, 9],
    ]
    out = []
    for prog in programs:
        flat = bytearray([0])
        for item in prog:
            flat += bytes(item) if isinstance(item, tuple) else bytes((item,))
        out.append(bytes(flat))
        out.append(bytes((4 | 8,)) + bytes(flat[1:]))  # extended messages + ADD-PATH
        out.append(bytes((1 | 2 | 16 | 32,)) + bytes(flat[1:]))  # AS2, iBGP, hold 0, DelayOpen
    return out


def main() -> None:
    for target, items in build().items():
        d = HERE / "corpus" / target
        d.mkdir(parents=True, exist_ok=True)  # added to: merged fuzzer finds stay
        for data in dict.fromkeys(items):
            (d / hashlib.sha1(data).hexdigest()).write_bytes(data)
        print(f"{target}: {len(set(items))} seeds in {d.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

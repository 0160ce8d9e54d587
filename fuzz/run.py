"""Run a fuzz target: coverage-guided with atheris (libFuzzer), or with the built-in mutator.

    python fuzz/run.py decoder --runs 1000000            # atheris if installed, else built-in
    python fuzz/run.py fsm --engine builtin --runs 20000 --seed 1
    python fuzz/run.py decoder --engine atheris --runs 10000000 -- -max_len=8192
    python fuzz/run.py decoder --replay tests/hostile/regressions/decoder.txt some-crash-file
    python fuzz/run.py all --merge       # keep what atheris found (fuzz/work) in fuzz/corpus

Targets are in ``fuzz/targets.py``. Seeds are read from ``fuzz/corpus/<target>/`` (built from
the real-peer captures and the codec fixtures by ``fuzz/make_corpus.py``). With atheris, new
interesting inputs go to ``fuzz/work/<target>/`` (not committed) and crashes to
``fuzz/crashes/``; the built-in mutator writes crashes there too. A crash becomes a regression
fixture by adding its hex to ``tests/hostile/regressions/<target>.txt``.
"""

import argparse
import hashlib
import os
import random
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_NAMES = ("decoder", "fsm", "fsm_ops")
MAX_LEN = {"decoder": 9000, "fsm": 9000, "fsm_ops": 600}


def load_targets(instrument: bool = False):
    """Import the targets (under atheris' coverage instrumentation when asked)."""
    if instrument:
        import atheris

        with atheris.instrument_imports(include=["bgpd"]):
            import bgpd.fsm  # noqa: F401
            import bgpd.wire  # noqa: F401
        with atheris.instrument_imports(include=["fuzz"]):
            from fuzz import targets
    else:
        from fuzz import targets
    return targets


def corpus_dir(target: str) -> Path:
    return HERE / "corpus" / target


def load_corpus(target: str) -> list[bytes]:
    d = corpus_dir(target)
    if not d.is_dir():
        return []
    return [p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()]


def parse_hex(text: str) -> bytes:
    """Whitespace-separated hex tokens, each optionally repeated: ``ffff*8 0013 04``."""
    out = bytearray()
    for token in text.split():
        hexpart, _, count = token.partition("*")
        out += bytes.fromhex(hexpart) * (int(count) if count else 1)
    return bytes(out)


def read_hex_list(path: Path) -> list[tuple[str, bytes]]:
    """One input per line, ``<hex tokens>  # comment`` (see :func:`parse_hex`); blank lines
    and lines starting with ``#`` are skipped. Returns (comment, bytes) pairs."""
    out = []
    for line in path.read_text().splitlines():
        text, _, comment = line.partition("#")
        if text.strip():
            out.append((comment.strip(), parse_hex(text)))
    return out


# --- the built-in mutator ----------------------------------------------------------------------

MARKER = b"\xff" * 16
INTERESTING8 = (0, 1, 2, 3, 4, 0x0F, 0x10, 0x1F, 0x20, 0x40, 0x7F, 0x80, 0x81, 0xC0, 0xE0, 0xFF)
INTERESTING16 = (
    0,
    1,
    4,
    19,
    23,
    29,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0x3FF,
    4077,
    4096,
    4097,
    0x7FFF,
    0x8000,
    0xFFFE,
    0xFFFF,
)


def fix_lengths(buf: bytearray) -> None:
    """Make every BGP header's length reach the next marker (or the end)."""
    starts = []
    i = buf.find(MARKER)
    while i != -1:
        starts.append(i)
        i = buf.find(MARKER, i + 19)
    for k, s in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(buf)
        if s + 18 <= len(buf):
            buf[s + 16 : s + 18] = min(end - s, 0xFFFF).to_bytes(2, "big")


def mutate(data: bytes, rng: random.Random, corpus: list[bytes], max_len: int) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 2, 3, 4, 6, 10))):
        op = rng.randrange(12)
        n = len(buf)
        if op == 0 and n:
            buf[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            buf[rng.randrange(n)] = rng.randrange(256)
        elif op == 2 and n:
            buf[rng.randrange(n)] = rng.choice(INTERESTING8)
        elif op == 3 and n >= 2:
            i = rng.randrange(n - 1)
            buf[i : i + 2] = rng.choice(INTERESTING16).to_bytes(2, "big")
        elif op == 4:
            i = rng.randrange(n + 1)
            buf[i:i] = rng.randbytes(rng.choice((1, 1, 2, 4, 8, 16)))
        elif op == 5 and n:
            i = rng.randrange(n)
            del buf[i : i + rng.choice((1, 1, 2, 4, 8, 32, 256))]
        elif op == 6 and n:
            i = rng.randrange(n)
            chunk = buf[i : i + rng.choice((1, 3, 4, 8, 19, 64, 512))]
            j = rng.randrange(n + 1)
            buf[j:j] = chunk * rng.choice((1, 1, 2, 16))
        elif op == 7 and corpus:
            other = rng.choice(corpus)
            i = rng.randrange(len(buf) + 1)
            j = rng.randrange(len(other) + 1)
            buf = buf[:i] + other[j:] if rng.random() < 0.5 else buf[:i] + other[2:]
        elif op == 8:
            fix_lengths(buf)
        elif op == 9 and n:
            buf[0] = rng.randrange(256)
        elif op == 10 and n > 2:
            buf[1] = rng.randrange(256)
        elif op == 11 and n:
            # Grow a value by repeating its last octets (long paths, many attributes).
            i = rng.randrange(n)
            k = rng.choice((2, 3, 4, 6, 8, 12))
            buf[i:i] = buf[max(0, i - k) : i] * rng.choice((10, 100, 1000))
        if rng.random() < 0.3:
            fix_lengths(buf)
    return bytes(buf[:max_len])


def save_crash(target: str, data: bytes) -> Path:
    d = HERE / "crashes"
    d.mkdir(exist_ok=True)
    path = d / f"{target}-{hashlib.sha1(data).hexdigest()}"
    path.write_bytes(data)
    return path


def run_builtin(
    target: str,
    fn,
    runs: int,
    seed: int = 0,
    max_time: float | None = None,
    corpus: list[bytes] | None = None,
    keep_going: bool = False,
    save: bool = True,
) -> dict:
    """Replay the seeds, then ``runs`` mutated inputs. Returns counts, time and failures."""
    corpus = load_corpus(target) if corpus is None else corpus
    seeds = corpus or [b"\x00\x00"]
    rng = random.Random(seed)
    max_len = MAX_LEN.get(target, 4096)
    failures: list[tuple[bytes, str]] = []
    start = time.perf_counter()
    done = 0

    def one(data: bytes) -> bool:
        try:
            fn(data)
        except Exception:
            tb = traceback.format_exc()
            failures.append((data, tb))
            if save:
                where = save_crash(target, data)
                tb += f"\ninput saved to {where}\n"
                failures[-1] = (data, tb)
            return keep_going
        return True

    for data in seeds:
        done += 1
        if not one(data):
            break
    else:
        while done < runs:
            if max_time is not None and time.perf_counter() - start > max_time:
                break
            data = mutate(rng.choice(seeds), rng, seeds, max_len)
            done += 1
            if not one(data):
                break
    elapsed = time.perf_counter() - start
    return {
        "target": target,
        "runs": done,
        "seconds": elapsed,
        "per_second": done / elapsed if elapsed else 0.0,
        "failures": failures,
    }


# --- atheris --------------------------------------------------------------------------------


CHILD = "--atheris-child"


def _child_command(target: str) -> str:
    """argv[0] for libFuzzer: with -merge and -fork it runs it again through the shell."""
    return f"{sys.executable} {Path(__file__).resolve()} {target} {CHILD}"


def _atheris_child(target: str, libfuzzer_args: list[str]) -> None:
    import atheris

    fn = load_targets(instrument=True).TARGETS[target]
    atheris.Setup([_child_command(target), *libfuzzer_args], fn)
    atheris.Fuzz()


def run_atheris(target: str, runs: int, extra: list[str], merge: bool = False) -> None:
    import atheris

    targets = load_targets(instrument=True)
    fn = targets.TARGETS[target]
    work = HERE / "work" / target
    work.mkdir(parents=True, exist_ok=True)
    (HERE / "crashes").mkdir(exist_ok=True)
    if merge:
        # Add to the committed corpus the inputs of fuzz/work that reach new coverage.
        dirs = [str(corpus_dir(target)), str(work), "-merge=1"]
    else:
        dirs = [str(work), str(corpus_dir(target)), f"-runs={runs}"]  # new inputs: work/
    args = [
        _child_command(target),
        *dirs,
        f"-max_len={MAX_LEN.get(target, 4096)}",
        f"-artifact_prefix={HERE / 'crashes'}/{target}-",
        "-print_final_stats=1",
        *extra,
    ]
    atheris.Setup(args, fn)
    atheris.Fuzz()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) >= 2 and argv[1] == CHILD:
        _atheris_child(argv[0], argv[2:])  # a libFuzzer worker (-fork, -merge)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("target", choices=TARGET_NAMES + ("all",))
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--time", type=float, default=None, help="stop after this many seconds")
    ap.add_argument("--engine", choices=("auto", "atheris", "builtin"), default="auto")
    ap.add_argument("--keep-going", action="store_true", help="built-in: collect all failures")
    ap.add_argument("--replay", nargs="*", help="run these files (raw, or hex lists) and exit")
    ap.add_argument(
        "--merge", action="store_true", help="atheris: merge fuzz/work/<target> into the corpus"
    )
    libfuzzer_args: list[str] = []
    if "--" in argv:  # everything after -- goes to libFuzzer
        k = argv.index("--")
        argv, libfuzzer_args = argv[:k], argv[k + 1 :]
    args = ap.parse_args(argv)
    args.libfuzzer_args = libfuzzer_args

    if args.replay is not None:
        fn = load_targets().TARGETS[args.target]
        bad = 0
        for name in args.replay:
            path = Path(name)
            items = (
                read_hex_list(path) if path.suffix == ".txt" else [(path.name, path.read_bytes())]
            )
            for comment, data in items:
                try:
                    fn(data)
                except Exception:
                    bad += 1
                    print(f"FAIL {comment or path}: {data.hex()}", file=sys.stderr)
                    traceback.print_exc()
        return 1 if bad else 0

    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "builtin"
    names = TARGET_NAMES if args.target == "all" else (args.target,)
    if args.merge:
        engine = "atheris"
    if engine == "atheris":
        if len(names) > 1:
            # libFuzzer owns the process: one target per process.
            import subprocess

            for name in names:
                cmd = [sys.executable, __file__, name, "--engine", "atheris"]
                cmd += ["--runs", str(args.runs)] + (["--merge"] if args.merge else [])
                cmd += ["--", *args.libfuzzer_args]
                rc = subprocess.call(cmd)
                if rc:
                    return rc
            return 0
        run_atheris(names[0], args.runs, args.libfuzzer_args, merge=args.merge)
        return 0

    targets = load_targets()
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    rc = 0
    for name in names:
        r = run_builtin(
            name, targets.TARGETS[name], args.runs, seed, args.time, keep_going=args.keep_going
        )
        print(
            f"{name}: {r['runs']} inputs in {r['seconds']:.1f} s "
            f"({r['per_second']:.0f}/s, built-in mutator, seed {seed}), "
            f"{len(r['failures'])} failures"
        )
        for _data, tb in r["failures"][:5]:
            print(tb, file=sys.stderr)
        if r["failures"]:
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())

"""The fuzz targets in CI: regressions, the seed corpus, and a short mutation run.

``fuzz/targets.py`` holds the targets and their invariants (the decoder under 32 contexts, the
FSM fed random bytes once Established, the FSM driven by random sequences of inputs);
``make fuzz`` runs them coverage-guided with atheris for hours, ``make fuzz-short`` and
:func:`test_fuzz_short` run the built-in mutator for 20,000 inputs in a few seconds. Every
input a fuzzer found is kept in ``regressions/<target>.txt`` and replayed here.
"""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGRESSIONS = Path(__file__).resolve().parent / "regressions"


def _load(name: str, path: Path):
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


run = _load("fuzz.run", ROOT / "fuzz" / "run.py")
targets = run.load_targets()

SHORT_RUNS = {"decoder": 10_000, "fsm": 5_000, "fsm_ops": 5_000}  # 20,000 inputs
SEED = int(os.environ.get("FUZZ_SEED", "7411"))


def _regressions():
    for path in sorted(REGRESSIONS.glob("*.txt")):
        for n, (comment, data) in enumerate(run.read_hex_list(path)):
            yield pytest.param(path.stem, data, id=f"{path.stem}-{n}-{comment[:40]}")


@pytest.mark.parametrize(("target", "data"), list(_regressions()))
def test_regression(target: str, data: bytes):
    targets.TARGETS[target](data)


@pytest.mark.parametrize("target", run.TARGET_NAMES)
def test_seed_corpus(target: str):
    corpus = run.load_corpus(target)
    assert len(corpus) >= 10, f"fuzz/corpus/{target} is missing: run fuzz/make_corpus.py"
    fn = targets.TARGETS[target]
    for data in corpus:
        fn(data)


def test_fuzz_short():
    """20,000 mutated inputs over the three targets, none raising. (How fast is printed,
    not asserted: speed is measured by benchmarks, and CI machines are shared.)"""
    total = seconds = 0.0
    problems = []
    for name, runs in SHORT_RUNS.items():
        r = run.run_builtin(name, targets.TARGETS[name], runs, seed=SEED, save=False)
        total += r["runs"]
        seconds += r["seconds"]
        for data, tb in r["failures"]:
            problems.append(f"{name} (FUZZ_SEED={SEED}) input {data.hex()}\n{tb}")
    assert not problems, "\n".join(problems)
    assert total >= sum(SHORT_RUNS.values())
    print(f"{total:.0f} inputs in {seconds:.1f} s")


def test_targets_catch_violations():
    """The harness itself: an input that breaks an invariant is reported, not swallowed."""
    boom = []

    def target(data: bytes) -> None:
        if len(data) > 3:
            boom.append(data)
            raise AssertionError("invariant")

    r = run.run_builtin("decoder", target, 50, seed=1, corpus=[b"abcd"], save=False)
    assert r["failures"] and boom and r["failures"][0][0] == boom[0]

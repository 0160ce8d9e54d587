"""Fixtures of the differential tests against BIRD 1.6.8: the golden cases, root, iproute2.

The harness modules (harness.py, inputs.py, peerrig.py) are imported by name: this directory
is put on sys.path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from needs import skip_or_fail

sys.path.insert(0, str(Path(__file__).resolve().parent))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests of this directory that do not wait for ``outcomes`` (test_fork_semantics:
    one run each, about 20 s) run right after the first test that does: the cases' thread
    pool (test_birddiff.outcomes) has started then and works on while they run, instead of
    both taking their turn. Their order is otherwise kept."""
    here = Path(__file__).resolve().parent
    idx = [i for i, it in enumerate(items) if here in Path(it.path).resolve().parents]
    block = [items[i] for i in idx]
    pooled = [it for it in block if "outcomes" in it.fixturenames]
    alone = [it for it in block if "outcomes" not in it.fixturenames]
    if not pooled or not alone:
        return
    ordered = pooled[:1] + alone + pooled[1:]
    for i, it in zip(idx, ordered, strict=True):
        items[i] = it


GOLDENS = Path("calico-confd/confd/tests/compiled_templates")


@pytest.fixture(scope="session")
def goldens(shared_corpora) -> Path:
    """confd's golden BIRD files (88 cases), from ../shared/corpora."""
    path = shared_corpora / GOLDENS
    if not path.is_dir():
        skip_or_fail(f"{path} is absent (see /work/shared/corpora/calico-confd/SOURCE.md)")
    return path


@pytest.fixture(scope="session")
def netns_ok() -> None:
    """Root, iproute2 and network namespaces, or a skip saying what is missing."""
    if os.geteuid() != 0:
        skip_or_fail("the differential tests need root (network namespaces)")
    if shutil.which("ip") is None:
        skip_or_fail("the differential tests need iproute2's ip: apt-get install iproute2")
    name = f"bdprobe{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode != 0:
        skip_or_fail(f"cannot create a network namespace: {r.stderr.strip()}")
    subprocess.run(["ip", "netns", "del", name], capture_output=True)

"""Fixtures of the BIRD front-end tests: the corpus, BIRD 1.6.8, network namespaces."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from needs import skip_or_fail

sys.path.insert(0, str(Path(__file__).resolve().parent))


CORPUS = Path("calico-confd/confd/tests/compiled_templates")


@pytest.fixture(scope="session")
def goldens(shared_corpora) -> Path:
    """The directory of confd's golden BIRD files (88 cases)."""
    path = shared_corpora / CORPUS
    if not path.is_dir():
        skip_or_fail(f"{path} is absent (see /work/shared/corpora/calico-confd/SOURCE.md)")
    return path


@pytest.fixture
def netns():
    """A fresh network namespace ``bf-<random>`` (removed afterwards), or a skip."""
    if os.geteuid() != 0:
        skip_or_fail("network namespaces need root")
    name = f"bf-{secrets.token_hex(3)}"
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode != 0:
        skip_or_fail(f"cannot create a network namespace: {r.stderr.strip()}")
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)

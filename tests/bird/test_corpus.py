"""confd's 528 golden files: bgpd parses all of them, and agrees with BIRD 1.6.8 on each.

Each main file is read with its two includes (``bird.cfg`` as ``bird`` does, ``bird6.cfg`` as
``bird6``), so the 176 main files cover all 528. Upstream BIRD 1.6.8 accepts every one except
the two that set the fork's ``krt_tunnel``; for those, bgpd in upstream mode must give BIRD's
exact error (which names ``krt_tunnel`` where it stands), and in Calico-fork mode (the
default) must accept them.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from bird_helpers import golden_mains

from bgpd.bird import BirdError, check_file, load
from bgpd.bird.translate import translate


def _bird_p(sbin, path, ipv6: bool) -> tuple[int, str]:
    binary = sbin / ("bird6" if ipv6 else "bird")
    r = subprocess.run([str(binary), "-p", "-c", str(path)], capture_output=True, text=True)
    err = r.stderr.strip()
    return r.returncode, err[len("bird: ") :] if err.startswith("bird: ") else err


def _ours(path, ipv6: bool, fork: bool) -> tuple[int, str]:
    try:
        check_file(str(path), ipv6=ipv6, fork=fork)
    except BirdError as e:
        return 1, str(e)
    return 0, ""


def test_every_golden_file_parses(goldens):
    mains = golden_mains(goldens)
    assert len(mains) == 176
    files: set = set()
    for path, ipv6 in mains:
        config = check_file(str(path), ipv6=ipv6)
        files.update(config.files)
        assert config.protocols, path
        assert config.router_id is not None, path
    assert len(files) == 528  # every bird*.cfg, through the includes


def test_bird_agrees_on_every_golden_file(goldens, bird16):
    krt_tunnel = []
    for path, ipv6 in golden_mains(goldens):
        bird = _bird_p(bird16, path, ipv6)
        assert _ours(path, ipv6, fork=False) == bird, path
        if bird[0]:
            krt_tunnel.append(bird[1])
    # BIRD 1.6.8 refuses exactly the two files with the fork's krt_tunnel: the error is at the
    # ';' that ends ``krt_tunnel=""`` (krt_tunnel is no attribute there, so not assignable)
    assert len(krt_tunnel) == 2
    for message in krt_tunnel:
        assert message.endswith("You may set only variables.")
        where, _ = message.split(" ", 1)
        file, line, col = where.rsplit(":", 2)
        text = Path(file).read_text().splitlines()[int(line) - 1]
        assert re.search(r'krt_tunnel\s*=\s*"[^"]*"\s*;$', text[: int(col)]), text


@pytest.mark.parametrize("ipv6", [False, True], ids=["bird", "bird6"])
def test_every_golden_file_translates(goldens, ipv6):
    """Every golden config becomes a valid bgpd Config (what cannot be expressed is noted)."""
    for path, v6 in golden_mains(goldens):
        if v6 != ipv6:
            continue
        config, extras = translate(load(str(path), ipv6=ipv6))
        bird = load(str(path), ipv6=ipv6)
        bgp = [p for p in bird.protocols if p.kind == "bgp"]
        assert len(config.neighbors) + len(extras.skipped) == len(bgp), path
        assert [p.name for p in extras.protocols] == [p.name for p in bird.protocols]
        if bird.of_kind("kernel"):
            assert config.kernel is not None and config.kernel.protocol == 12

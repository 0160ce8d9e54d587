"""Helpers of the BIRD front-end tests (imported by name: tests/bird is on sys.path)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def golden_mains(goldens: Path) -> list[tuple[Path, bool]]:
    """Every main file: ``(path, ipv6)``, bird.cfg as IPv4 and bird6.cfg as IPv6."""
    out = [(p, False) for p in sorted(goldens.rglob("bird.cfg"))]
    out += [(p, True) for p in sorted(goldens.rglob("bird6.cfg"))]
    return out


def run_in(ns: str, *cmd: str) -> None:
    subprocess.run(["ip", "-n", ns, *cmd], check=True, capture_output=True, text=True)

"""Helpers of the monitoring tests (a module of its own: test modules import it by name)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any


def wait_for(cond: Callable[[], Any], timeout: float = 30.0, what: str = "", step=0.2):
    """Poll ``cond()`` until it returns something true; return it (AssertionError on timeout)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = cond()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or cond}: {last!r}")
        time.sleep(step)


def show_json(b, *args: str) -> Any:
    """``bgpd ARGS --json`` through the real CLI."""
    res = b.cli(*args, "--json")
    assert res.returncode == 0, f"bgpd {' '.join(args)}: {res.stderr}"
    return json.loads(res.stdout)

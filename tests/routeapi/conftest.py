"""Fixtures of the route API and health-check tests.

The engine tests drive :class:`bgpd.rde.Rde` with plain values and a fake clock through
tests/rde/rde_harness.py. The interop tests use the interop harness's fixtures (``bird``,
``bgpd``, ``addresses``: tests/interop/conftest.py), loaded here from that file under a name
of its own so that nothing of it is copied.
"""

import importlib.util
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
for sub in ("rib", "rde", "interop"):
    p = str(TESTS / sub)
    if p not in sys.path:
        sys.path.insert(0, p)

_spec = importlib.util.spec_from_file_location(
    "ra_interop_fixtures", TESTS / "interop" / "conftest.py"
)
_interop = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_interop)

addresses = _interop.addresses
bird = _interop.bird
bgpd = _interop.bgpd
require = _interop.require
require_root = _interop.require_root

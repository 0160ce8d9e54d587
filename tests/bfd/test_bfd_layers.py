"""The sans-I/O part of bgpd.bfd stays sans-I/O, and the package imports nothing else of ours.

tests/test_layers.py checks components; inside bgpd/bfd only transport.py and the runner
(__main__.py) may touch sockets, the event loop or threads, and nothing may read the clock
but the runner (time is passed in).
"""

import ast
from pathlib import Path

import pytest

BFD = Path(__file__).resolve().parents[2] / "bgpd" / "bfd"
IO = {"asyncio", "socket", "select", "selectors", "subprocess", "threading"}
SANS_IO = ["__init__.py", "packet.py", "auth.py", "session.py", "manager.py", "config.py"]


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found


@pytest.mark.parametrize("name", SANS_IO)
def test_sans_io_modules(name):
    mods = imports(BFD / name)
    tops = {m.split(".")[0] for m in mods if not m.startswith(".")}
    assert not tops & (IO | {"time", "structlog", "logging"}), tops & (IO | {"time"})


@pytest.mark.parametrize("path", sorted(BFD.glob("*.py")), ids=lambda p: p.name)
def test_nothing_else_of_bgpd(path):
    mods = imports(path)
    assert not [m for m in mods if m.startswith("bgpd") or m.startswith("..")]


def test_the_list_is_complete():
    assert {p.name for p in BFD.glob("*.py")} == set(SANS_IO) | {"transport.py", "__main__.py"}

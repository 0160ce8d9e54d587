"""The dependency direction of DESIGN.md, checked on every module's imports.

Every ``.py`` under ``bgpd/`` is parsed with :mod:`ast`; its ``import`` and ``from ... import``
statements (anywhere in the file, including ``TYPE_CHECKING`` blocks and function bodies) and
``importlib.import_module("...")`` calls with a literal name are resolved to the component
they reach, and checked against the table below.
"""

import ast
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent / "bgpd"

# Standard-library modules that mean I/O, an event loop, threads or the wall clock.
IO = frozenset({"asyncio", "socket", "select", "selectors", "subprocess", "threading"})
NO_LOOP = frozenset({"asyncio", "socket"})

ALL = frozenset(
    {
        "wire",
        "fsm",
        "rib",
        "reflector",
        "policy",
        "rde",
        "session",
        "kernel",
        "config",
        "api",
        "bird",
        "speaker",
        "cli",
        "log",
        "birdctl",
        "bfd",
        "mrt",
        "bmp",
    }
)


class Rule(NamedTuple):
    may_import: frozenset  # components of ours this one may import (itself always)
    forbidden: frozenset = frozenset()  # standard-library modules it must not import
    why: str = ""


# The sans-I/O core: no I/O, no event loop, no threads, and no clock (DESIGN.md: time is
# passed in, so that its tests are deterministic).
CORE = IO | {"time"}

# component -> rule. A component is a subpackage of bgpd (or a module such as bgpd/log.py).
RULES: dict[str, Rule] = {
    "bgpd": Rule(frozenset(), why="the package root re-exports nothing of its components"),
    "wire": Rule(frozenset(), CORE, "bytes <-> messages: no I/O, no loop, no clock"),
    "fsm": Rule(frozenset({"wire"}), CORE, "events in, actions out; time is passed in"),
    "rib": Rule(frozenset({"wire"}), CORE, "wire only: reflector and policy sit above it"),
    "reflector": Rule(frozenset({"wire", "rib"}), CORE, "may use rib, never the reverse"),
    "policy": Rule(frozenset({"wire", "rib"}), CORE, "may use rib, never the reverse"),
    "rde": Rule(
        frozenset({"wire", "rib", "reflector", "policy"}),
        CORE,
        "the route engine: sans-I/O over rib, reflector and policy; returns actions, never "
        "reaches the daemon, sessions or the kernel",
    ),
    "log": Rule(frozenset(), why="logging set-up: nothing of ours"),
    "session": Rule(frozenset({"wire", "fsm"}), why="the asyncio binding of one peer"),
    "kernel": Rule(frozenset({"wire", "rib"}), why="consumes best-route changes (rib types)"),
    "config": Rule(
        frozenset({"wire", "rib", "reflector", "policy", "bfd", "mrt", "bmp"}),
        why="schema, loading, validation, diff: above the sans-I/O core, below the daemon "
        "(the mrt and bmp sections are checked by their packages, imported lazily)",
    ),
    "api": Rule(
        frozenset({"wire", "fsm", "rib", "reflector", "policy", "config"}),
        why="the control socket: the daemon hands it data, it never reaches up",
    ),
    "bird": Rule(
        frozenset({"wire", "config"}),
        NO_LOOP,
        "BIRD 1.6 configuration: reads its files, builds a model, a Config and filter programs",
    ),
    "cli": Rule(
        frozenset({"api", "config", "speaker", "wire", "bird"}),
        why="talks to a daemon through api, starts one only through speaker, decodes with wire",
    ),
    "birdctl": Rule(
        frozenset(),
        why="BIRD's control socket and process contract: the daemon hands it a plain-data "
        "snapshot and a handler, it reaches nothing of ours",
    ),
    "bfd": Rule(
        frozenset(),
        why="BFD: sans-I/O packet/auth/session/manager/config plus its asyncio binding "
        "(transport, the runner); imports nothing else of ours",
    ),
    "mrt": Rule(
        frozenset({"wire", "rib", "config"}),
        why="MRT export: encodes what the daemon hands it; reads rib shapes (as kernel does)",
    ),
    "bmp": Rule(
        frozenset({"wire", "rib", "config", "mrt"}),
        why="BMP export: encodes what the daemon hands it; reads rib shapes (as kernel does)",
    ),
    "speaker": Rule(ALL, why="the one place that knows everything: the daemon"),
}


def component_of(module: str) -> str | None:
    """``bgpd.wire.attrs`` -> ``wire``; ``bgpd`` -> ``bgpd``; not ours -> None."""
    parts = module.split(".")
    if parts[0] != "bgpd":
        return None
    return parts[1] if len(parts) > 1 else "bgpd"


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, root: Path) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` for every import in the file."""
    name = module_name(path, root)
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[: len(base) - (node.level - 1)]
                base_name = ".".join(base + ([node.module] if node.module else []))
            else:
                base_name = node.module or ""
            out.append((node.lineno, base_name))
            # ``from bgpd import speaker`` / ``from . import prefix``: the names may be modules
            for alias in node.names:
                sub = f"{base_name}.{alias.name}"
                if _is_module(sub, root):
                    out.append((node.lineno, sub))
        elif (
            isinstance(node, ast.Call)
            and _call_name(node.func) in ("importlib.import_module", "import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            out.append((node.lineno, node.args[0].value))
    return out


def _call_name(func) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return ""


def _is_module(name: str, root: Path) -> bool:
    parts = name.split(".")
    if parts[0] != "bgpd":
        return False
    p = root.parent.joinpath(*parts)
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def violations(root: Path, rules: dict[str, Rule] = RULES) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        mod = module_name(path, root)
        comp = component_of(mod)
        rule = rules.get(comp)
        where = path.relative_to(root.parent)
        if rule is None:
            found.append(f"{where}: component {comp!r} has no rule in tests/test_layers.py RULES")
            continue
        for line, target in imports_of(path, root):
            top = target.split(".")[0]
            if top in rule.forbidden:
                found.append(f"{where}:{line}: {comp} must not import {top} ({rule.why})")
            other = component_of(target)
            if other is None or other in (comp, "bgpd"):
                continue
            if other not in rule.may_import:
                found.append(f"{where}:{line}: {comp} must not import bgpd.{other} ({rule.why})")
    return list(dict.fromkeys(found))  # one line per violation


def test_current_tree_follows_the_layers():
    assert ROOT.is_dir()
    problems = violations(ROOT)
    assert not problems, "layering violations:\n" + "\n".join(problems)


def test_every_component_has_a_rule():
    comps = {
        p.stem if p.is_file() else p.name for p in ROOT.iterdir() if not p.name.startswith("_")
    }
    comps = {c for c in comps if (ROOT / c).is_dir() or (ROOT / f"{c}.py").is_file()}
    comps.discard("__pycache__")
    assert comps <= set(RULES), comps - set(RULES)


# --- the checker itself catches violations --------------------------------------------------


def _fake_tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "bgpd"
    for rel, text in {"__init__.py": "", **files}.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    for d in list(root.rglob("*")):
        if d.is_dir() and not (d / "__init__.py").exists():
            (d / "__init__.py").write_text("")
    return root


@pytest.mark.parametrize(
    "rel, text, expect",
    [
        ("wire/x.py", "import asyncio\n", "wire must not import asyncio"),
        ("wire/x.py", "from time import monotonic\n", "wire must not import time"),
        ("wire/x.py", "from ..rib import table\n", "wire must not import bgpd.rib"),
        ("fsm/x.py", "import bgpd.session.peer\n", "fsm must not import bgpd.session"),
        ("fsm/x.py", "import socket\n", "fsm must not import socket"),
        ("rib/x.py", "from bgpd.policy import engine\n", "rib must not import bgpd.policy"),
        ("rib/x.py", "from bgpd import reflector\n", "rib must not import bgpd.reflector"),
        (
            "reflector/x.py",
            "from ..policy import engine\n",
            "reflector must not import bgpd.policy",
        ),
        ("policy/x.py", "from bgpd.config import load\n", "policy must not import bgpd.config"),
        ("session/x.py", "from bgpd.rib import LocRib\n", "session must not import bgpd.rib"),
        ("kernel/x.py", "from bgpd.session import peer\n", "kernel must not import bgpd.session"),
        ("cli/x.py", "from bgpd.rib import LocRib\n", "cli must not import bgpd.rib"),
        (
            "cli/x.py",
            "import importlib\nimportlib.import_module('bgpd.session.peer')\n",
            "cli must not import bgpd.session",
        ),
        (
            "rib/x.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bgpd.policy import x\n",
            "rib must not import bgpd.policy",
        ),
        ("fsm/x.py", "import time\n", "fsm must not import time"),
        ("rib/x.py", "from time import monotonic\n", "rib must not import time"),
        ("rde/x.py", "import asyncio\n", "rde must not import asyncio"),
        ("rde/x.py", "import time\n", "rde must not import time"),
        ("rde/x.py", "from bgpd.fsm import Protocol\n", "rde must not import bgpd.fsm"),
        ("rde/x.py", "from bgpd.kernel import Kernel\n", "rde must not import bgpd.kernel"),
        ("rde/x.py", "from ..speaker import daemon\n", "rde must not import bgpd.speaker"),
        ("rde/x.py", "from bgpd.session import peer\n", "rde must not import bgpd.session"),
        ("newpart/x.py", "", "component 'newpart' has no rule"),
    ],
)
def test_checker_catches(tmp_path, rel, text, expect):
    others = {"rib/table.py": "", "policy/engine.py": "", "reflector/__init__.py": ""}
    root = _fake_tree(tmp_path, {**others, rel: text})
    problems = violations(root)
    assert any(expect in p for p in problems), problems


def test_checker_allows(tmp_path):
    root = _fake_tree(
        tmp_path,
        {
            "wire/a.py": "from . import b\nfrom .b import c\nimport struct\n",
            "wire/b.py": "",
            "fsm/a.py": "from ..wire import b\n",
            "rde/a.py": "from bgpd.rib import table\nfrom bgpd.policy import engine\n",
            "policy/a.py": "from bgpd.rib import table\n",
            "rib/table.py": "from bgpd.wire.b import x\n",
            "cli/a.py": "import importlib\nimportlib.import_module('bgpd.speaker')\nfrom bgpd import __version__\n",
            "speaker/daemon.py": "import asyncio\nfrom bgpd.cli import a\nfrom bgpd.rde import x\n",
        },
    )
    assert violations(root) == []

"""Make this Python process show ``bird ...`` in ``/proc/<pid>/cmdline`` (and ``comm``).

``calicoctl node status`` finds the daemons by ``/proc/<pid>/cmdline``: argv[0] must be
exactly ``bird`` (``bird6``). A console script runs as ``/path/python /path/bgpd-bird -R
...``, so argv[0] is the interpreter.

Why not re-exec with argv[0] = "bird" (``execv(sys.executable, ["bird", "-m", ...])``)?
CPython 3.11 computes ``sys.executable`` from argv[0]: a name without a slash is looked
up on ``$PATH``, which finds ``/usr/sbin/bird`` (BIRD, or our own symlink), not the
interpreter, and ``sys.prefix`` is then derived from that path: the venv's
``pyvenv.cfg`` is not found, ``sys.prefix`` becomes ``/usr`` and the venv's packages
vanish (checked: ``exec -a bird .venv/bin/python -c 'import sys; print(sys.prefix)'``
prints ``/usr``).

Instead we rewrite the argument area in place, as setproctitle(3) does: the kernel serves
``cmdline`` from the process's own memory between ``arg_start`` and ``arg_end``
(``/proc/self/stat`` fields 48 and 49). We write ``bird\\0-R\\0...\\0`` there and pad
with NULs, keeping the last byte NUL so the kernel reads exactly that area. The new argv
is never longer than the old one (the old one held the interpreter and script paths
too). CPython keeps its own copies of argv, so nothing in the interpreter changes.
``prctl(PR_SET_NAME)`` sets ``comm`` (``ps``, ``pgrep -x bird``) as well.
"""

from __future__ import annotations

import ctypes
import ctypes.util

PR_SET_NAME = 15


def _arg_area() -> tuple[int, int]:
    with open("/proc/self/stat", "rb") as f:
        data = f.read()
    # fields after "(comm)" start at field 3; arg_start is field 48, arg_end field 49
    fields = data[data.rindex(b")") + 2 :].split()
    return int(fields[48 - 3]), int(fields[49 - 3])


def set_argv(args: list[str]) -> bool:
    """Show ``args`` as this process's command line; False if it cannot (no /proc, or the
    new line is longer than the original argument area)."""
    new = b"\0".join(a.encode() for a in args) + b"\0"
    try:
        start, end = _arg_area()
    except (OSError, ValueError, IndexError):
        return False
    size = end - start
    if size <= 0 or len(new) > size:
        return False
    ctypes.memmove(start, new + b"\0" * (size - len(new)), size)
    set_comm(args[0])
    return True


def set_comm(name: str) -> bool:
    """``prctl(PR_SET_NAME)``: the 15-character ``comm`` name."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def cmdline(pid: int | str = "self") -> list[str]:
    """``/proc/<pid>/cmdline`` split as gopsutil's CmdlineSlice does."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        raw = f.read()
    if raw.endswith(b"\0"):
        raw = raw[:-1]
    return [p.decode(errors="replace") for p in raw.split(b"\0")]

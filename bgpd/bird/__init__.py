"""BIRD 1.6 configuration, as Calico's confd writes it, with BIRD's semantics.

* :func:`load` parses a ``bird.cfg`` (``ipv6=False``) or ``bird6.cfg`` (``ipv6=True``) with its
  includes into a :class:`~.model.BirdConfig`, or raises :class:`BirdError` worded and placed
  as ``bird -p`` reports it (``file:line:col message``).
* :func:`compile_filter` gives a filter's :class:`~.program.Program`; ``Program.run(view)``
  runs it on a :class:`~.program.RouteView` and returns a :class:`~.program.Verdict`.
* :func:`~.translate.translate` maps the model onto bgpd's own ``Config`` plus the
  :class:`~.translate.BirdExtras` that ``Config`` cannot hold yet.

See docs/bird.md.
"""

from .errors import BirdError, FilterRuntimeError
from .model import BirdConfig
from .parser import parse_file
from .program import Program, RouteView, Verdict, compile_filter


def check_file(path: str, ipv6: bool = False, fork: bool = True) -> BirdConfig:
    """``bird -p``: parse ``path`` and compile its filters; raises :class:`BirdError`."""
    config = parse_file(path, ipv6, fork)
    for f in (*config.filters.values(), *_inline_filters(config)):
        compile_filter(f, ipv6)
    return config


def _inline_filters(config: BirdConfig):
    for p in config.protocols:
        for f in (p.import_filter, p.export_filter):
            if f is not None and f != "none":
                yield f


def load(path: str, ipv6: bool = False, fork: bool = True) -> BirdConfig:
    """Parse ``path`` as ``bird`` (or, ``ipv6``, ``bird6``) 1.6 would.

    ``fork``: Calico's fork (``krt_tunnel`` is a keyword); False: upstream BIRD 1.6.8.
    """
    return parse_file(path, ipv6, fork)


__all__ = [
    "BirdConfig",
    "BirdError",
    "FilterRuntimeError",
    "Program",
    "RouteView",
    "Verdict",
    "check_file",
    "compile_filter",
    "load",
    "parse_file",
]

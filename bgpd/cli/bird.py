"""The daemon runner of ``bgpd-bird`` / ``bgpd-bird6`` (bgpd.birdctl.process ``RUNNER``).

It lives in the command-line layer for the import it causes first: :mod:`bgpd.cli` imports
asyncio without TLS (``asyncio_without_tls``: OpenSSL left out, ~4 MiB of every daemon's RSS),
which bgpd.birdctl may not do itself (it imports nothing of ours). Then the daemon, as
:func:`bgpd.speaker.birdrun.run` runs it.
"""

from bgpd.speaker.birdrun import run

__all__ = ["run"]

"""The `bgpd` command (click): ``bgpd.cli.main:main``.

Importing this package imports asyncio without its TLS support, when nothing has imported
asyncio yet (see :func:`asyncio_without_tls`).
"""

import sys


def asyncio_without_tls() -> bool:
    """Import asyncio with ``ssl`` hidden, so that it does not load OpenSSL; True if done.

    bgpd never speaks TLS (BGP, the control socket, the metrics endpoint and the health checks
    are plain TCP or Unix sockets), but asyncio imports :mod:`ssl` when it is imported, only
    to offer TLS, and OpenSSL costs the daemon ~4 MiB of RSS. A Python built without ``ssl``
    is a configuration asyncio supports (its modules then hold ``ssl = None`` and plain
    sockets work exactly as before; asking for TLS raises RuntimeError). ``ssl`` is hidden
    only while asyncio is imported: a later ``import ssl`` (prometheus_client's, when a
    metrics endpoint is configured) gets the real module.

    Nothing is changed when asyncio or ssl is already imported (a test runner, a program
    that imports bgpd as a library after setting up its own event loop).
    """
    if "asyncio" in sys.modules or "ssl" in sys.modules:
        return False
    sys.modules["ssl"] = None  # type: ignore[assignment]  # `import ssl` -> ImportError
    try:
        import asyncio  # noqa: F401
    finally:
        del sys.modules["ssl"]
    return True


asyncio_without_tls()

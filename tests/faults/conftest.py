"""Fault tests run speakers that decode into the process-wide attribute pool
(``bgpd.wire.DEFAULT_POOL``): put it back as it was after each test (``hostile_peer.
restore_default_pool``), so that the sets a test interned do not reach other tests."""

import faultkit  # noqa: F401  (puts tests/hostile on sys.path)
from hostile_peer import restore_default_pool as _restore_default_pool  # noqa: F401

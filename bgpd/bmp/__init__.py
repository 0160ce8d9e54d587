"""BMP export (RFC 7854; RFC 9069 Loc-RIB; RFC 8671 Adj-RIB-Out): stations fed by the daemon.

* :class:`BmpService` is the daemon's callback API and owns the stations (:mod:`.service`);
* :class:`BmpPeer`, the tables shapes and the resync are in :mod:`.monitor` (sans-I/O);
* the messages are encoded by :mod:`.codec` (sans-I/O);
* :class:`Station` is one collector connection with back-off and a bounded buffer
  (:mod:`.station`);
* :func:`check_bmp` / :func:`parse_bmp` check the ``bmp`` config section (:mod:`.config`).
"""

from .config import check_bmp, parse_bmp
from .monitor import BmpPeer, LocalRib, live_items, resync, updates_for
from .service import BmpService
from .station import Station, StationConfig

__all__ = [
    "BmpPeer",
    "BmpService",
    "LocalRib",
    "Station",
    "StationConfig",
    "check_bmp",
    "live_items",
    "parse_bmp",
    "resync",
    "updates_for",
]

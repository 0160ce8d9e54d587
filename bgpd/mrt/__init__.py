"""MRT export (RFC 6396, RFC 8050): the update log (BGP4MP_ET) and table dumps (TABLE_DUMP_V2).

* :class:`MrtPeer` encodes one session's BGP4MP_ET records (:mod:`.codec`);
* :class:`UpdateLogWriter` logs every BGP message to rotated files, written by a thread
  (:mod:`.writer`, core in :mod:`.log`);
* :func:`dump_table` / :func:`write_table_dump` write a TABLE_DUMP_V2 file of the Loc-RIB and
  the Adj-RIBs-In from a :class:`TableSnapshot` (:mod:`.dump`);
* :func:`check_mrt` / :func:`parse_mrt` check the ``mrt`` config section (:mod:`.config`).
"""

from .codec import MrtPeer, peer_index_table, rib_attrs, rib_record
from .config import MrtConfig, check_mrt, parse_mrt
from .dump import (
    DumpPeer,
    TableDumpEncoder,
    TableSnapshot,
    dump_table,
    encode_table,
    write_table_dump,
)
from .log import MessageSplitter, UpdateLog
from .writer import UpdateLogWriter

__all__ = [
    "DumpPeer",
    "MessageSplitter",
    "MrtConfig",
    "MrtPeer",
    "TableDumpEncoder",
    "TableSnapshot",
    "UpdateLog",
    "UpdateLogWriter",
    "check_mrt",
    "dump_table",
    "encode_table",
    "parse_mrt",
    "peer_index_table",
    "rib_attrs",
    "rib_record",
    "write_table_dump",
]

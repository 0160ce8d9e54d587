"""The update log's core (batching, rotation, file names) and the message splitter."""

import calendar

from bgpd.mrt.log import MessageSplitter, UpdateLog, file_name, period_start
from bgpd.wire.messages import KEEPALIVE_BYTES, Notification

T0 = calendar.timegm((2024, 5, 1, 10, 14, 59))  # 10:14:59 UTC


def test_periods_are_aligned_on_the_interval():
    assert period_start(T0, 900) == calendar.timegm((2024, 5, 1, 10, 0, 0))
    assert period_start(T0 + 1, 900) == calendar.timegm((2024, 5, 1, 10, 15, 0))
    assert file_name("u.%Y%m%d.%H%M", period_start(T0 + 1, 900)) == "u.20240501.1015"


def test_records_are_batched_until_flush_bytes():
    log = UpdateLog("u.%H%M", 900, flush_bytes=100, flush_interval=5)
    log.add(b"x" * 60, T0 - 100)
    assert log.take() == []
    assert log.next_deadline() == T0 - 95  # the flush interval comes before the period end
    log.add(b"y" * 60, T0 - 99)
    assert log.take() == [("write", "u.1000", b"x" * 60 + b"y" * 60, 2)]
    assert log.next_deadline() == T0 + 1  # only the rotation is pending


def test_flush_interval():
    log = UpdateLog("u.%H%M", 900, flush_bytes=1 << 20, flush_interval=1)
    log.add(b"a", T0 - 10)
    log.handle_timer(T0 - 9.5)
    assert log.take() == []
    log.handle_timer(T0 - 9)
    assert log.take() == [("write", "u.1000", b"a", 1)]
    assert log.buffered == 0


def test_rotation_at_the_boundary_closes_the_file():
    log = UpdateLog("u.%H%M", 900, flush_bytes=1 << 20, flush_interval=60)
    log.add(b"a", T0)
    assert log.next_deadline() == T0 + 1
    log.handle_timer(T0 + 1)
    assert log.take() == [("write", "u.1000", b"a", 1), ("close", "u.1000")]
    assert log.next_deadline() is None  # nothing open, nothing pending
    log.add(b"b", T0 + 2)
    log.add(b"c", T0 + 901)  # the next period: the 10:15 file is finished
    assert log.take() == [("write", "u.1015", b"b", 1), ("close", "u.1015")]
    log.close()
    assert log.take() == [("write", "u.1030", b"c", 1), ("close", "u.1030")]
    assert log.records == 3 and log.bytes == 3


def test_no_rotation_names_the_file_after_its_opening():
    log = UpdateLog("u.%H%M%S", 0, flush_bytes=1, flush_interval=1)
    log.add(b"a", T0)
    log.add(b"b", T0 + 10_000)
    assert [op[1] for op in log.take()] == ["u.101459", "u.101459"]
    assert log.next_deadline() is None


def test_splitter_cuts_whole_messages_and_keeps_the_rest():
    notif = Notification(6, 2, b"").encode()
    stream = KEEPALIVE_BYTES + notif + KEEPALIVE_BYTES
    s = MessageSplitter()
    assert s.feed(stream[:25]) == [KEEPALIVE_BYTES]
    assert s.feed(stream[25:40]) == [notif]
    assert s.feed(stream[40:]) == [KEEPALIVE_BYTES]
    assert s.feed(b"") == []


def test_splitter_gives_up_on_a_stream_that_is_not_bgp():
    s = MessageSplitter()
    assert s.feed(b"\xff" * 16 + b"\x00\x05\x04") == []

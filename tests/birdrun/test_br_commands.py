"""The commands that change something, sent to BIRD 1.6.8 and to bgpd-bird in the same
order: the same replies, and afterwards the same state (``show protocols``, ``show route``).
Run on the lab once its recovery is over; every step is undone before the test ends (and
both daemons are back to the steady state the other tests compare)."""

from __future__ import annotations

import time

import br_lab as lab
from bc_helpers import query, wait_for
from br_compare import bird_transient, comparable

BROKEN = """\
router id 192.0.2.1;
protocol static {
  route 10.65.0.0/26 blackhole
}
"""


def both(the_lab, *commands: str) -> list[tuple[list[str], list[str]]]:
    """The replies of BIRD and bgpd to ``commands`` (one connection each, BIRD first);
    BIRD's ``show`` replies are taken again while it shows a transient state."""
    for _ in range(10):
        theirs = query(the_lab.bird.sock, *commands)[1:]
        if not all(c.startswith("show") for c in commands) or not bird_transient(theirs):
            break
        time.sleep(0.1)
    mine = query(the_lab.bgpd.sock, *commands)[1:]
    return list(zip(theirs, mine, strict=True))


def assert_same(pairs) -> None:
    for theirs, mine in pairs:
        assert comparable(mine) == comparable(theirs)


def settle(the_lab, pred, what: str, timeout: float = 20) -> None:
    for s in the_lab.sides().values():
        wait_for(lambda s=s: pred(s), timeout, f"{s.tag}: {what}")
    # away from the instant it happened: BIRD shows a refused connection as Idle until its
    # next event-loop turn, and a command read in the same turn sees that
    time.sleep(0.7)


def info(side, name: str) -> str:
    r = query(side.sock, f"show protocols {name}")[1]
    return " ".join(r[1].split()[3:]) if len(r) > 1 else ""


def test_commands_as_bird_does(lab_sides, steady):
    L = lab_sides
    # disable / enable, a refused peer: down with no error, then refused again
    assert_same(both(L, f"disable {lab.REFUSED}"))
    assert_same(both(L, f"show protocols all {lab.REFUSED}", f"disable {lab.REFUSED}"))
    r = both(L, f'enable {lab.REFUSED} "back again"')
    assert r[0][0] == ["0011-Mesh_192_0_2_7: enabled", "0000 "]
    assert_same(r)
    settle(L, lambda s: "Connection refused" in info(s, lab.REFUSED), "refused again")
    assert_same(both(L, f"show protocols all {lab.REFUSED}", "show protocols"))

    # restart the mesh session: administrative reset, back up, routes again
    r = both(L, f"restart {lab.MESH}")
    assert r[0][0] == [f"0012-{lab.MESH}: restarted", "0000 "]
    assert_same(r)
    settle(L, lambda s: "Established" in info(s, lab.MESH), "the mesh peer back")
    settle(
        L,
        lambda s: "3 imported" in "\n".join(query(s.sock, f"show protocols all {lab.MESH}")[1]),
        "its routes back",
    )
    time.sleep(2.5)  # a kernel scan of BIRD's
    assert_same(both(L, "show protocols", f"show protocols all {lab.MESH}", "show route all"))

    # patterns, and route refresh in and out
    assert_same(both(L, 'disable "Mesh_192_0_2_7"', 'show protocols "Mesh*"'))
    assert_same(both(L, 'enable "Mesh*"', f"reload {lab.MESH}", f"reload in {lab.MESH}"))
    assert_same(both(L, f"reload out {lab.MESH}", f"reload {lab.NODE}"))
    # bgpd connects at once, BIRD after its connect delay: refused on both, then compare
    settle(L, lambda s: "Connection refused" in info(s, lab.REFUSED), "refused again")

    # a static protocol disabled: its routes leave the table, and come back
    assert_same(both(L, "disable static1"))
    settle(
        L,
        lambda s: "blackhole" not in "\n".join(query(s.sock, "show route")[1]),
        "the static routes gone",
    )
    assert_same(both(L, "show route", "show protocols", "show route export kernel1"))
    assert_same(both(L, "enable static1"))
    settle(
        L,
        lambda s: "\n".join(query(s.sock, "show route")[1]).count("blackhole") == 2,
        "the static routes back",
    )
    assert_same(both(L, "show route all", "show protocols all static1"))

    # configure: the same file again; a broken one (checked, then refused); restrict
    assert_same(both(L, "configure", "configure soft"))
    for s in L.sides().values():
        (s.dir / "broken.cfg").write_text(BROKEN)
    r = both(L, 'configure check "broken.cfg"', 'configure "broken.cfg"')
    assert r[0][0] == [
        "0002-Reading configuration from broken.cfg",
        "8002 broken.cfg:4:1 syntax error",
    ]
    assert_same(r)
    assert_same(both(L, "show status", "show protocols"))
    r = both(L, "restrict", f"disable {lab.MESH}", "configure check", "down")
    assert [x[0] for x in r] == [
        ["0016 Access restricted"],
        ["8007 Access denied"],
        ["0002-Reading configuration from bird.cfg", "0020 Configuration OK"],
        ["8007 Access denied"],
    ]
    assert_same(r)
    settle(L, lambda s: "Established" in info(s, lab.MESH), "the mesh peer up")

"""Comparing two daemons' replies: what may differ, and nothing else.

:func:`comparable` applies bc_helpers.normalise (clock times and dates, the remaining
seconds of ticking timers, ``show memory`` sizes and their widths), writes Calico's version string as
Debian's BIRD 1.6.8 prints it, and blanks the numbers of the two ``Export updates`` /
``Export withdraws`` rows of ``show protocols all``: BIRD counts every route offered to a
protocol's export over time, bgpd does not keep those counters (docs/birdrun.md).
"""

from __future__ import annotations

import re

import br_lab as lab
from bc_helpers import normalise

_EXPORT_ROW = re.compile(r"^(\S*\s+Export (updates|withdraws):)(.*)$")


def comparable(lines: list[str]) -> list[str]:
    text = normalise("\n".join(lines)).replace(lab.CALICO_VERSION, "1.6.8")
    out = []
    for line in text.split("\n"):
        m = _EXPORT_ROW.match(line)
        if m:
            line = m.group(1) + re.sub(r"\s+\d+", " N", m.group(3))
        out.append(re.sub(r"\s+<size>$", " <size>", line))
    return out


def bird_transient(replies: list[list[str]]) -> bool:
    """BIRD shows a refused connection as ``Idle`` until its event loop's next turn (tens of
    milliseconds, once per connect delay): a reply taken then is taken again."""
    return any(
        re.search(rf"{lab.REFUSED} BGP .* start .*\bIdle\b", line)
        for reply in replies
        for line in reply
    )

"""bird6 1.6.8 and bgpd-bird6 on the same IPv6 configuration (static, Calico's kernel and
export filter shapes, kernel learning, device, direct, an iBGP mesh peer (BIRD 2 over IPv6)
and a refused one): every reply the same (br_compare.comparable)."""

from __future__ import annotations

import br_lab as lab
import pytest
from br_compare import comparable


def direct_imports_blanked(lines: list[str]) -> list[str]:
    """BIRD's direct protocol sometimes counts an IPv6 interface address twice (the
    kernel notifies it again as its flags settle after the link comes up, and BIRD
    withdraws and re-announces the same route); bgpd counts a route once. The numbers of
    direct1's two ``Import`` rows are left out of the comparison, nothing else."""
    out, block = [], ""
    for line in lines:
        if line.startswith(("1002-", " ")) and " master " in line:
            block = line[5:].split()[0] if line.startswith("1002-") else line.split()[0]
        for row in ("Import updates:", "Import withdraws:"):
            if block == "direct1" and row in line:
                line = line.split(row)[0] + row + " ..."
        out.append(line)
    return out


@pytest.mark.parametrize("command", lab.READ_ONLY6)
def test_same_reply_as_bird6(lab6, command):
    _lab, replies = lab6
    i = lab.READ_ONLY6.index(command) + 1
    mine, theirs = comparable(replies["bgpd"][i]), comparable(replies["bird"][i])
    assert direct_imports_blanked(mine) == direct_imports_blanked(theirs)


def test_the_bird6_lab_covers_the_route_kinds(lab6):
    _lab, replies = lab6
    routes = "\n".join(replies["bird"][lab.READ_ONLY6.index("show route all") + 1])
    for word in (
        "blackhole",
        "unreachable",
        " dev cali1a2b3c ",
        "via 2001:db8::2 on brv0",
        "[AS65002i]",
        "BGP.community: (65001,42)",
        "Kernel.metric: 1024",
    ):
        assert word in routes, word
    rows = "\n".join(replies["bird"][lab.READ_ONLY6.index("show protocols") + 1])
    assert f"{lab.MESH6} BGP      master   up" in rows and "Connection refused" in rows

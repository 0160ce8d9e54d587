"""``protocol bfd`` and ``bfd on`` in a BIRD 1.6 configuration (issue 17): parsed as BIRD 1.6.8
parses them (the same files accepted, the same errors at the same places), and translated
into the neighbor's ``bfd:`` section of bgpd's Config."""

import subprocess

import pytest

from bgpd import bird
from bgpd.bird import BirdError
from bgpd.bird.translate import translate

GOOD = """router id 10.0.0.1;
protocol bfd bfd1 {
  interface "eth*", "ens*" { interval 50 ms; multiplier 3; passive yes; };
  interface "lo";
  multihop { min rx interval 200 ms; min tx interval 300 ms; idle tx interval 2 s; };
  neighbor 10.0.0.9 dev "eth0" local 10.0.0.1;
  neighbor 10.9.9.9 local 10.0.0.1 multihop yes;
}
protocol bgp p1 { local as 65000; neighbor 10.0.0.2 as 65001; bfd on; }
protocol bgp p2 { local as 65000; neighbor 10.0.0.3 as 65000; multihop; source address 10.0.0.1; bfd; }
protocol bgp p3 { local as 65000; neighbor 10.0.0.4 as 65001; bfd off; }
"""
AUTH = """router id 10.0.0.1;
protocol bfd {
  interface "eth*" { authentication meticulous keyed sha1; password "abc" { id 5; }; };
}
protocol bgp p1 { local as 65000; neighbor 10.0.0.2 as 65001; bfd on; }
"""
BAD = [
    GOOD.replace(" source address 10.0.0.1;", ""),  # multihop BFD needs a source address
    'router id 10.0.0.1;\nprotocol bfd {\n  interface "eth*" { bogus 5; };\n}\n',
    'router id 10.0.0.1;\nprotocol bfd {\n  interface "eth*" { interval 50; };\n}\n',
    'router id 10.0.0.1;\nprotocol bfd {\n  interface "eth*" { authentication keyed sha3; };\n}\n',
    "router id 10.0.0.1;\nprotocol bfd {\n  neighbor 10.0.0.2 multihop;\n  bogus;\n}\n",
    'router id 10.0.0.1;\nprotocol bfd {\n  neighbor 10.0.0.2 dev "eth0" multihop;\n}\n',
]


def bird_p(bird16, path) -> tuple[int, str]:
    r = subprocess.run(
        [str(bird16 / "bird"), "-p", "-c", str(path)], capture_output=True, text=True
    )
    return r.returncode, r.stderr.strip().removeprefix("bird: ")


@pytest.mark.parametrize("text", [GOOD, AUTH, *BAD])
def test_parsed_as_bird_parses_it(bird16, tmp_path, text):
    path = tmp_path / "bird.cfg"
    path.write_text(text)
    code, err = bird_p(bird16, path)
    try:
        bird.check_file(str(path))
        ours = (0, "")
    except BirdError as e:
        ours = (1, str(e))
    assert ours == (code, err)


def test_bfd_on_becomes_the_neighbors_bfd_section(tmp_path):
    path = tmp_path / "bird.cfg"
    path.write_text(GOOD)
    config, extras = translate(bird.load(str(path)))
    by = {n.address: n for n in config.neighbors}
    direct = by["10.0.0.2"].bfd  # the first interface block: 50 ms x 3, passive
    assert (direct.params.min_tx, direct.params.min_rx, direct.params.multiplier) == (
        50_000,
        50_000,
        3,
    )
    assert direct.params.passive and not direct.multihop
    multihop = by["10.0.0.3"].bfd  # a multihop BGP session: the multihop block
    assert multihop.multihop and multihop.params.min_rx == 200_000
    assert multihop.params.min_tx == 300_000 and multihop.params.idle_tx == 2_000_000
    assert by["10.0.0.4"].bfd is None  # bfd off
    assert [(p.name, p.proto) for p in extras.protocols][0] == ("bfd1", "BFD")


def test_authentication_is_carried_over(tmp_path):
    path = tmp_path / "bird.cfg"
    path.write_text(AUTH)
    config, _ = translate(bird.load(str(path)))
    auth = config.neighbors[0].bfd.params.auth
    assert auth is not None and auth.type.name.lower().replace("_", "-").endswith("sha1")

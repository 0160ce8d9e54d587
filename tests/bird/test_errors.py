"""Bad input: BIRD's message, file, line and column, and `bgpd check --bird` exits 1.

Every case is a small file; the expected text is what BIRD 1.6.8 prints for it
(``bird -p -c FILE``, after its ``bird: `` prefix). With the ``bird16`` fixture available the
same file is also given to BIRD itself, so the expectation cannot drift from the oracle.
"""

from __future__ import annotations

import subprocess

import pytest
from click.testing import CliRunner

from bgpd.bird import BirdError, check_file
from bgpd.cli.main import main

H = "router id 1.2.3.4;\nprotocol device {}\n"

# name -> (text, family ipv6, BIRD's answer with FILE for the path)
CASES = {
    # the six the issue names
    "unknown_statement": (
        "router id 1.2.3.4;\nfoo bar;\n",
        False,
        "FILE:2:1 syntax error",
    ),
    "bad_literal": (
        H + "protocol kernel { scan time 99999999999; }\n",
        False,
        "FILE:3:29 Number out of range",
    ),
    "bad_address": (
        H + "protocol bgp x { local as 3; neighbor 1.2.3.400 as 5; }\n",
        False,
        "FILE:3:39 Invalid IPv4 address 1.2.3.400",
    ),
    "missing_include": (
        H + 'include "nope.cfg";\n',
        False,
        "FILE:3:1 Unable to open included file DIR/nope.cfg: No such file or directory",
    ),
    "undefined_function": (
        H + "function f() { x(); }\n",
        False,
        "FILE:3:18 You can't call something which is not a function. Really.",
    ),
    "symbol_65": (
        H + "function " + "a" * 65 + "() {}\n",
        False,
        "FILE:3:10 Symbol too long",
    ),
    "quoted_symbol_65": (
        H + "function '" + "a-" * 32 + "b'() {}\n",
        False,
        "FILE:3:10 Symbol too long",
    ),
    "ipv6_in_bird_cfg": (
        H + "filter f { if net ~ fd00::/8 then accept; reject; }\n",
        False,
        "FILE:3:21 This is an IPv4 router, therefore IPv6 addresses are not supported",
    ),
    # more of BIRD's checks and their positions
    "dotted_quad_in_bird6": (
        "router id 1.2.3.4;\nprotocol device {}\nprotocol bgp p { local as 4; "
        "neighbor 1.1.1.1 as 4; }\n",
        True,
        "FILE:3:39 syntax error",
    ),
    "no_router_id_bird6": (
        "protocol device {}\n",
        True,
        "FILE:1:0 Router ID must be configured manually on IPv6 routers",
    ),
    "end_of_file": (
        H + "filter f { if net ~ 10.0.0.0/8 then accept",
        False,
        "FILE:1:37 syntax error",
    ),
    "no_protocol": (
        "router id 1.2.3.4;\n",
        False,
        "FILE:1:0 No protocol is specified in the config file",
    ),
    "wrong_arity": (
        H + "function f(bool a) {}\nfilter x { f(); accept; }\n",
        False,
        "FILE:4:14 Wrong number of arguments for function f.",
    ),
    "defined_twice": (
        H + "function f() {}\nfunction f() {}\n",
        False,
        "FILE:4:10 Symbol already defined",
    ),
    "no_such_filter": (
        H + "protocol static { import filter nope; }\n",
        False,
        "FILE:3:33 No such filter.",
    ),
    "not_a_template": (
        H + "protocol static from nope {}\n",
        False,
        "FILE:3:22 Template or protocol name expected",
    ),
    "rr_client_ebgp": (
        H + "protocol bgp p { local as 4; neighbor 1.1.1.1 as 5; rr client; }\n",
        False,
        "FILE:3:64 Only internal neighbor can be RR client",
    ),
    "comparisons_do_not_associate": (
        H + "filter f { if 1 = 2 = 3 then accept; }\n",
        False,
        "FILE:3:21 syntax error",
    ),
    "read_only_attribute": (
        H + "filter f { net = 1.2.3.0/24; accept; }\n",
        False,
        "FILE:3:28 This static attribute is read-only.",
    ),
    "host_bits": (
        H + "protocol static { route 1.2.3.4/24 blackhole; }\n",
        False,
        "FILE:3:33 Invalid prefix",
    ),
    "unterminated_string": (
        H + 'protocol bgp p { description "abc\n }\n',
        False,
        "FILE:3:30 Unterminated string",
    ),
    "multihop_range": (
        H + "protocol bgp p { local as 4; neighbor 1.1.1.1 as 4; multihop 300; }\n",
        False,
        "FILE:3:65 Multihop must be in range 1-255",
    ),
    "two_kernels_one_table": (
        H + "protocol kernel {}\nprotocol kernel {}\n",
        False,
        "FILE:1:0 Kernel syncer (kernel1) already attached to table master",
    ),
}


def _expected(tmp_path, name: str) -> tuple:
    text, ipv6, answer = CASES[name]
    path = tmp_path / f"{name}.cfg"
    path.write_text(text)
    return path, ipv6, answer.replace("FILE", str(path)).replace("DIR", str(tmp_path))


@pytest.mark.parametrize("name", sorted(CASES))
def test_error_as_bird_prints_it(tmp_path, name):
    path, ipv6, answer = _expected(tmp_path, name)
    with pytest.raises(BirdError) as e:
        check_file(str(path), ipv6=ipv6)
    assert str(e.value) == answer
    file, line, col = answer.split(" ", 1)[0].rsplit(":", 2)
    assert (e.value.file, e.value.line, e.value.col) == (file, int(line), int(col))


@pytest.mark.parametrize("name", sorted(CASES))
def test_bird_gives_the_same_error(tmp_path, name, bird16):
    path, ipv6, answer = _expected(tmp_path, name)
    binary = bird16 / ("bird6" if ipv6 else "bird")
    r = subprocess.run([str(binary), "-p", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip() == f"bird: {answer}"


@pytest.mark.parametrize(
    "name",
    [
        "unknown_statement",
        "bad_literal",
        "missing_include",
        "undefined_function",
        "symbol_65",
        "ipv6_in_bird_cfg",
        "dotted_quad_in_bird6",
    ],
)
def test_check_command_exits_1(tmp_path, name):
    path, ipv6, answer = _expected(tmp_path, name)
    args = ["check", "--bird", str(path)] + (["--ipv6"] if ipv6 else [])
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 1
    assert r.stderr.strip() == answer
    assert r.stdout == ""


def test_check_command_accepts_silently(tmp_path):
    path = tmp_path / "ok.cfg"
    path.write_text(H + "filter f { if net ~ [ 10.0.0.0/8{16,24} ] then accept; reject; }\n")
    r = CliRunner().invoke(main, ["check", "--bird", str(path)])
    assert (r.exit_code, r.output) == (0, "")


def test_check_command_missing_main_file(tmp_path):
    r = CliRunner().invoke(main, ["check", "--bird", str(tmp_path / "none.cfg")])
    assert r.exit_code == 1
    assert "Unable to open configuration file" in r.stderr


def test_ipv6_needs_bird(tmp_path):
    r = CliRunner().invoke(main, ["check", "--ipv6", "-c", str(tmp_path / "x.yaml")])
    assert r.exit_code == 2

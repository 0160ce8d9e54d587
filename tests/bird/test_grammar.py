"""The grammar, the includes and the lexer's quirks, each snippet checked against BIRD 1.6.8.

bgpd must accept what ``bird -p`` accepts and refuse what it refuses with the same
``file:line:col message``. The snippets cover sets (pairs, large and extended communities,
prefix sets), path masks, case, constants, variables and functions, every protocol option
bgpd reads, and the include quirks (relative paths, globs, depth, a comment that runs on
into the including file, two includes on one line). Constructs bgpd refuses by design
(other protocols, ROA tables) are in test_errors.py and docs/bird.md.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from bgpd.bird import BirdError, check_file

H = "router id 1.2.3.4;\nprotocol device {}\n"


def F(body: str) -> str:
    return H + "filter f\n" + body + "\n"


SNIPPETS = {
    "s1": F("int x; { x = 5; if x > 3 then accept; reject; }"),
    "s2": F("{ if bgp_community ~ [(1,2), (3,*), (4..5, 6), (*, 7)] then accept; reject; }"),
    "s3": F(
        "{ if bgp_large_community ~ [(1,2,3), (4,5,*), (6,*,*), (7..8,*,*), (1,2,3..5)] then accept; reject; }"
    ),
    "s4": F(
        "{ if bgp_ext_community ~ [(rt, 1, 2), (ro, 3, *), (rt, 10.0.0.1, 5..6)] then accept; reject; }"
    ),
    "s5": F(
        "{ if bgp_path ~ [= 1 2 * 3..5 ? =] then accept; if bgp_path ~ / 1 ? 2 / then accept; reject; }"
    ),
    "s6": F("{ case net.len { 8: accept; 16..24, 32: reject; else: accept; } }"),
    "s7": "define X = 5;\ndefine Y = (X + 3) * 2;\ndefine P = 10.0.0.0/8;\n"
    + F("{ if net ~ P && Y = 16 then accept; reject; }"),
    "s8": H
    + "function g(int a; int b) int c; { c = a + b; return c; }\nfilter f { if g(1,2) = 3 then accept; reject; }\n",
    "s9": F(
        "{ bgp_path.prepend(65000); bgp_community.delete([(1,*)]); bgp_community.filter([(2,*)]); bgp_large_community.add((1,2,3)); bgp_ext_community.add((rt, 1, 2)); accept; }"
    ),
    "s10": F(
        "{ bgp_community = -empty-; bgp_path = +empty+; bgp_ext_community = --empty--; bgp_large_community = ---empty---; accept; }"
    ),
    "s11": F(
        "{ if ! defined(bgp_med) || bgp_med < 5 && source = RTS_STATIC then accept; reject; }"
    ),
    "s12": F(
        "{ if net.ip = 10.0.0.0 && net.len >= 8 && net.ip.mask(8) = 10.0.0.0 then accept; reject; }"
    ),
    "s13": F(
        "{ if bgp_path.first = 1 || bgp_path.last = 2 || bgp_path.len > 3 then accept; reject; }"
    ),
    "s14": F('{ print "x", net; printn 5; accept "ok"; }'),
    "s15": F(
        "{ if (1, 2) ~ bgp_community then accept; if (1,2,3) ~ bgp_large_community then accept; reject; }"
    ),
    "s16": F("pair p; { p = (1, 2); if p ~ bgp_community then accept; reject; }"),
    "s17": F("{ unset(bgp_med); bgp_origin = ORIGIN_IGP; dest = RTD_BLACKHOLE; accept; }"),
    "s18": F(
        "{ if net ~ [ 10.0.0.0/8+, 11.0.0.0/8-, 12.0.0.0/8{8,16}, 13.0.0.0/8 ] then accept; reject; }"
    ),
    "s19": F("{ if [1, 2, 3..5] ~ 4 then accept; reject; }"),
    "s20": F(
        "{ if 4 ~ [1, 2, 3..5] then accept; if 1.2.3.4 ~ [1.2.3.4, 1.2.3.5..1.2.3.9] then accept; reject; }"
    ),
    "s21": F("{ if net ~ [1.2.3.4, 10.0.0.0/8] then accept; reject; }"),
    "s22": F("{ if x then accept; }"),
    "s23": F("{ accept; } extra"),
    "s24": F("{ if 1 then else accept; }"),
    "s25": F("{ if 1 < 2 then { accept; } else { reject; } }"),
    "s26": F("{ if 1 < 2 then accept; else reject; }"),
    "s27": F("{ if 1 < 2 then accept else reject; }"),
    "s28": F("{ bgp_local_pref = ; }"),
    "s29": F("{ krt_metric = 5 }"),
    "s30": F("{ if net ~ 10.0.0.0/8 then { accept; }"),
    "s31": F('{ if ifname ~ "eth*" then accept; if proto = "x" then accept; reject; }'),
    "s32": F("{ if (rt, 1, 70000) ~ bgp_ext_community then accept; reject; }"),
    "s33": F("{ if (rt, 70000, 70000) ~ bgp_ext_community then accept; reject; }"),
    "s34": F("{ if bgp_community ~ [(1,2)..(3,4)] then accept; reject; }"),
    "s35": F("{ if bgp_community ~ [(3,2)..(1,4)] then accept; reject; }"),
    "s36": F("{ if bgp_community ~ [(5..3, 1)] then accept; reject; }"),
    "s37": F("{ if bgp_large_community ~ [(1..2, 3, 4)] then accept; reject; }"),
    "s38": F("{ if bgp_large_community ~ [(1, *, 4)] then accept; reject; }"),
    "s39": H + "function g() { return 1; }\nfilter f { if g() = 1 then accept; reject; }\n",
    "s40": H
    + "function g(bool b) { if b then accept; }\nfilter f { g(true); g(false); reject; }\n",
    "s42": F("{ case bgp_origin { ORIGIN_IGP: accept; else: reject; } }"),
    "s43": F("{ if (1+2)*3 - 4/2 = 7 then accept; reject; }"),
    "s44": F("{ if defined(1) then accept; reject; }"),
    "s45": F("{ if ! 1 = 2 then accept; reject; }"),
    "s46": F("{ if - 1 then accept; reject; }"),
    "s47": F("{ if [= =] ~ bgp_path then accept; reject; }"),
    "s48": F("{ if bgp_path ~ [= 1 x 2 =] then accept; reject; }"),
    "s49": F("int x; { if bgp_path ~ [= 1 x 2 =] then accept; reject; }"),
    "s50": F("{ if bgp_path ~ [= 1 (1+2) 2 =] then accept; reject; }"),
    "s51": F("{ if (1,2) = (1, 2) then accept; reject; }"),
    "s52": F("{ if net = [10.0.0.0/8] then accept; reject; }"),
    "s53": F("{ if bgp_next_hop = 10.0.0.1 then accept; reject; }"),
    "s54": F("{ if bgp_next_hop ~ 10.0.0.0/8 then accept; reject; }"),
    "s55": F(
        '{ bgp_next_hop = 10.0.0.1; gw = 10.0.0.2; ifname = "eth0"; scope = SCOPE_LINK; from = 1.1.1.1; preference = 5; accept; }'
    ),
    "s56": F("{ if 10.0.0.1 ~ bgp_community then accept; reject; }"),
    "s57": F("{ if '1abc' = 5 then accept; reject; }"),
    "s58": F("{ if 'accept' then accept; reject; }"),
    "s59": F("{ if else = 1 then accept; reject; }"),
    "s60": H
    + 'protocol static { route 10.0.0.0/8 via 1.2.3.4; route 11.0.0.0/8 via "eth0"; route 12.0.0.0/8 multipath via 1.2.3.4 weight 2 via 1.2.3.5; route 13.0.0.0/8 unreachable; route 14.0.0.0/8 prohibit; route 15.0.0.0/8 recursive 1.1.1.1; route 16.0.0.0/8 drop; route 17.0.0.0/8 reject; route 18.0.0.0/8 blackhole { bgp_med = 5; }; }\n',
    "s61": H
    + "protocol static { route 10.0.0.0:255.0.0.0 via 1.2.3.4; route 11.0.0.0:255.0.255.0 via 1.2.3.4; }\n",
    "s62": H
    + "protocol kernel { persist; scan time 2; learn; import all; export none; graceful restart; merge paths on limit 8; kernel table 100; metric 5; device routes; }\n",
    "s63": H
    + 'protocol direct { interface -"cali*", "eth*" 10.0.0.0/8, 192.168.0.0/16; interface "*"; check link; debug all; }\n',
    "s64": H
    + "listen bgp address 1.2.3.4 port 1790 v6only;\ngraceful restart wait 30;\nlog stderr all;\nlog syslog { info, warning };\ndebug protocols { states, events };\ntimeformat protocol iso long;\ntable t2;\n",
    "s66": H + "protocol bgp p { local as 4; neighbor 1.1.1.1 as 5; multihop; gateway direct; }\n",
    "s67": H
    + "protocol bgp p { local as 4; neighbor 1.1.1.1 as 4; graceful restart off; long lived graceful restart on; }\n",
    "s68": H + "protocol bgp p { local as 4; neighbor 1.1.1.1 as 5; rs client; }\n",
    "s69": H + "protocol bgp p { local as 4; neighbor 1.1.1.1 as 4; rs client; }\n",
    "s70": H
    + "template bgp t { local as 4; }\nprotocol bgp p from t { neighbor 1.1.1.1 as 4; }\nprotocol bgp from p { neighbor 1.1.1.2 as 4; }\n",
    "s71": H
    + "template bgp t { local as 4; neighbor 1.1.1.1 as 4; }\nprotocol bgp p from t { neighbor 1.1.1.2 as 4; }\n",
    "s75": H + "function bgp1() {}\nprotocol bgp { local as 4; neighbor 1.1.1.1 as 4; }\n",
    "s76": H + "protocol bgp { local as 4; neighbor 1.1.1.1 as 4; }\nfunction bgp1() {}\n",
    "s77": H + "protocol static { route 10.0.0.0/8 via 1.2.3.4 ; route 10.0.0.0/8 blackhole; }\n",
    "s78": H + 'eval 1+2;\neval "x";\n',
    "s79": F("{ if net ~ [10.0.0.0/8, 1.2.3.4] then accept; reject; }"),
    "s80": F("{ if net ~ [10.0.0.0/8{16,33}] then accept; reject; }"),
    "s81": F("{ if net ~ [10.0.0.0/8{16}] then accept; reject; }"),
    "s82": F("{ if bgp_community ~ [(1,2), 5] then accept; reject; }"),
    "s83": F("{ if 5 ~ [1..(2+3)] then accept; reject; }"),
    "s84": F("{ if 5 ~ [(2+3)] then accept; reject; }"),
    "s85": F("{ if 5 ~ [X] then accept; reject; }"),
    "s86": F("{ if bgp_local_pref > 2147483647-1024 then preference = 200; accept; }"),
    "s87": F(
        "{ if bgp_community ~ [(*,*)] then accept; if bgp_community ~ [(1..2,*)] then accept; if bgp_community ~ [(*,1..2)] then accept; reject; }"
    ),
    "s88": F(
        "{ if (ro, 1, 2) = (ro, 1, 2) then accept; if (unknown 5, 1, 2) = (generic, 1, 2) then accept; reject; }"
    ),
}


def _bird(sbin, path, ipv6=False) -> tuple[int, str]:
    binary = sbin / ("bird6" if ipv6 else "bird")
    r = subprocess.run([str(binary), "-p", "-c", str(path)], capture_output=True, text=True)
    err = r.stderr.strip()
    return r.returncode, err[len("bird: ") :] if err.startswith("bird: ") else ""


def _ours(path, ipv6=False) -> tuple[int, str]:
    try:
        check_file(str(path), ipv6=ipv6, fork=False)
    except BirdError as e:
        return 1, str(e)
    return 0, ""


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_snippet_as_bird(tmp_path, bird16, name):
    path = tmp_path / f"{name}.cfg"
    path.write_text(SNIPPETS[name])
    assert _ours(path) == _bird(bird16, path)


def _tree(tmp_path, files: dict) -> None:
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


INCLUDES = {
    # name: (main text, other files)
    "relative_to_includer": (
        H + 'include "sub/b.cfg";\n',
        {"sub/b.cfg": 'include "c.cfg";\n', "sub/c.cfg": "filter f { accept; }\n"},
    ),
    "error_in_include": (
        H + 'include "sub/b2.cfg";\n',
        {"sub/b2.cfg": 'include "c2.cfg";\n', "sub/c2.cfg": "filter f { accept; }\nfoo;\n"},
    ),
    "include_ends_mid_statement": (
        H + 'include "sub/e.cfg";\nfilter g { accept; }\n',
        {"sub/e.cfg": "filter f { accept"},
    ),
    "include_not_at_line_start": (H + 'filter g { accept; } include "sub/c.cfg";\n', {}),
    "two_includes_one_line": (
        H + 'include "sub/c.cfg"; include "sub/c.cfg";\n',
        {"sub/c.cfg": "filter f { accept; }\n"},
    ),
    "glob": (
        H + 'include "sub/g*.cfg";\n',
        {"sub/g1.cfg": "filter f1 { accept; }\n", "sub/g2.cfg": "filter f2 { accept; }\nbad;\n"},
    ),
    "glob_no_match": (H + 'include "sub/nomatch*.cfg";\n', {}),
    "depth_limit": (
        H + 'include "sub/d0.cfg";\n',
        {f"sub/d{i}.cfg": f'include "d{i + 1}.cfg";\n' for i in range(12)},
    ),
    "comment_runs_into_includer": (
        H + 'include "sub/cm.cfg"; foo bar\nfilter x { accept; }\n',
        {"sub/cm.cfg": "# comment without a newline"},
    ),
    "include_with_spaces_and_rest": (
        H + '   include   "sub/c.cfg"  ;  foo\n',
        {"sub/c.cfg": "filter f { accept; }\n"},
    ),
    "main_ends_after_include": (
        'router id 1.2.3.4;\ninclude "sub/c.cfg";',
        {"sub/c.cfg": "filter f { accept; }\n"},
    ),
    "directory": (H + 'include "sub";\n', {"sub/x": ""}),
    "defined_in_include": (
        H + 'include "sub/fn.cfg";\nfilter x { myfn(); accept; }\n',
        {"sub/fn.cfg": "function myfn() { if net ~ 10.0.0.0/8 then reject; }"},
    ),
    "used_before_include": (
        H + 'filter x { myfn2(); accept; }\ninclude "sub/fn2.cfg";\n',
        {"sub/fn2.cfg": "function myfn2() { }"},
    ),
    "missing": (H + 'include "sub/none.cfg";\n', {}),
}


@pytest.mark.parametrize("name", sorted(INCLUDES))
def test_include_as_bird(tmp_path, bird16, name):
    main_text, files = INCLUDES[name]
    _tree(tmp_path, files)
    (tmp_path / "sub").mkdir(exist_ok=True)
    main = tmp_path / "main.cfg"
    main.write_text(main_text)
    cwd = os.getcwd()
    os.chdir(tmp_path)  # relative names, as confd's check_cmd gives them
    try:
        assert _ours("main.cfg") == _bird(bird16, "main.cfg")
        assert _ours(main) == _bird(bird16, main)
    finally:
        os.chdir(cwd)


def test_include_files_are_listed(tmp_path):
    main_text, files = INCLUDES["relative_to_includer"]
    _tree(tmp_path, files)
    main = tmp_path / "main.cfg"
    main.write_text(main_text)
    config = check_file(str(main))
    assert config.files == [str(main), f"{tmp_path}/sub/b.cfg", f"{tmp_path}/sub/c.cfg"]
    assert "f" in config.filters

"""Filter semantics, corner by corner, against real BIRD 1.6.8 (CALICO.md §12.7).

One BIRD daemon (its own socket in a temp dir; static routes only, so it touches no kernel
table) holds a set of static routes whose attributes a static import filter sets, and one
named filter per case below. ``show route filter F all`` is BIRD's answer for every route;
bgpd parses the same file, builds each route from BIRD's own unfiltered table
(``show route all``), runs its compiled filter and must print exactly the same routes with
the same preference and attributes, and drop the same ones. A runtime error must drop the
route on both sides (BIRD logs ``filters, line N``; bgpd's verdict carries file:line).
"""

from __future__ import annotations

import concurrent.futures

import pytest
from bird_oracle import Oracle, shown_of, view_of

from bgpd.bird import RouteView, compile_filter, load
from bgpd.wire.attrs import AttrSet, intern

ROUTES = """
protocol static bf_routes {
  import filter {
    if net = 10.2.0.0/24 then {
      bgp_local_pref = 100; bgp_med = 5;
      bgp_community.add((65000, 100)); bgp_community.add((1, 2));
      bgp_path = +empty+; bgp_path.prepend(65002); bgp_path.prepend(65001);
    }
    if net = 10.3.1.0/24 then {
      bgp_local_pref = 2147482624;
      bgp_large_community.add((65000, 100, 200));
      bgp_path = +empty+; bgp_path.prepend(65001); bgp_path.prepend(65000);
    }
    if net = 10.192.5.0/26 then { bgp_next_hop = 10.192.0.5; bgp_local_pref = 0; }
    if net = 192.168.1.0/26 then {
      bgp_next_hop = 10.0.0.1; bgp_origin = ORIGIN_INCOMPLETE;
      bgp_path = +empty+; bgp_path.prepend(3); bgp_path.prepend(2); bgp_path.prepend(1);
      bgp_path.prepend(65000);
    }
    if net = 172.16.0.0/16 then { bgp_local_pref = 4294967295; }
    if net = 10.0.0.0/8 then {
      bgp_community.add((65000, 1)); bgp_community.add((65000, 2)); bgp_community.add((7, 7));
      bgp_ext_community.add((rt, 65000, 5));
    }
    accept;
  };
  route 10.1.0.0/24 blackhole;
  route 10.2.0.0/24 blackhole;
  route 10.3.1.0/24 blackhole;
  route 10.192.5.0/26 blackhole;
  route 192.168.1.0/26 unreachable;
  route 192.168.1.64/32 blackhole;
  route 172.16.0.0/16 prohibit;
  route 10.0.0.0/8 blackhole;
}
"""

# (name, the BIRD behaviour pinned, definitions, filter body)
CASES = [
    (
        "void_lt",
        "void < int is true (val_compare's 'hack for else'): krt_metric < 1024 on a route "
        "without a metric",
        "",
        "if krt_metric < 1024 then accept; reject;",
    ),
    (
        "void_gt",
        "attr > N is compiled N < attr: false for a void attr",
        "",
        "if bgp_local_pref > 5 then accept; reject;",
    ),
    (
        "void_le_ge",
        "<= and >= with void: void <= N true, void >= N false",
        "",
        "if bgp_med <= 0 && !(bgp_med >= 0) then accept; reject;",
    ),
    (
        "void_eq",
        "= on a void attr is false, != true (val_same; no error)",
        "",
        "if bgp_med = 5 then accept; if bgp_med != 5 then { bgp_local_pref = 1; accept; } reject;",
    ),
    (
        "void_arith",
        "arithmetic with a void operand is a runtime error: the route is dropped",
        "",
        "bgp_local_pref = 2147483647 - bgp_med; accept;",
    ),
    (
        "void_match",
        "~ with a void left side is a runtime error (bgp_next_hop undefined)",
        "",
        "if bgp_next_hop ~ 10.0.0.0/8 then accept; reject;",
    ),
    (
        "guarded_match",
        "the defined() guard Calico writes avoids that error",
        "",
        "if defined(bgp_next_hop) && bgp_next_hop ~ 10.192.0.0/16 then accept; reject;",
    ),
    (
        "defined_static",
        "defined() is true for static attributes; ifname is '' without an interface",
        "",
        'if defined(source) && defined(ifname) && ifname = "" && defined(net) then accept; reject;',
    ),
    (
        "defined_dyn",
        "defined() of an extended attribute is whether the route carries it",
        "",
        "if defined(bgp_local_pref) then accept; reject;",
    ),
    (
        "lists_never_void",
        "an absent community list reads as an empty list: defined() is true",
        "",
        "if defined(bgp_community) && defined(bgp_large_community) then accept; reject;",
    ),
    (
        "accept_in_function",
        "accept inside a function ends the caller's filter",
        "function bf_fa() { if net ~ 10.0.0.0/8 then accept; }",
        "bf_fa(); reject;",
    ),
    (
        "reject_in_function",
        "reject inside a function ends the caller's filter",
        "function bf_fr() { if net.len = 24 then reject; }",
        "bf_fr(); bgp_med = 77; accept;",
    ),
    (
        "accept_in_function_term",
        "accept in a function called inside an expression ends the filter too",
        "function bf_ft() { if net ~ 10.0.0.0/8 then accept; return true; }",
        "if bf_ft() then { bgp_med = 1; accept; } reject;",
    ),
    (
        "fall_off",
        "falling off the end of a filter is an error: the route is rejected",
        "",
        "if net ~ 10.0.0.0/8 then accept;",
    ),
    (
        "return_in_filter",
        "return outside a function ends the filter without accept: rejected",
        "",
        "if net ~ 10.0.0.0/8 then return 5; accept;",
    ),
    (
        "and_or_left",
        "&& and || have the same precedence, left-associative: a || b && c is (a || b) && c",
        "",
        "if net ~ 10.0.0.0/8 || net ~ 192.168.0.0/16 && net.len = 32 then accept; reject;",
    ),
    (
        "cmp_binds_tighter",
        "comparisons bind tighter than && and ||",
        "",
        "if net.len = 24 && net ~ 10.0.0.0/8 || net.len = 8 then accept; reject;",
    ),
    (
        "not_tightest",
        "! binds tightest: ! a = b is (!a) = b",
        "",
        "if ! defined(bgp_med) = true then accept; reject;",
    ),
    (
        "not_non_bool",
        "! of a non-boolean is a runtime error (! net.len = 24 is (!net.len) = 24)",
        "",
        "if ! net.len = 24 then accept; reject;",
    ),
    (
        "u32_wrap",
        "u32 arithmetic wraps: 2147483647 - 4294967295 and 0 - 1",
        "",
        "bgp_local_pref = 2147483647 - bgp_local_pref; bgp_med = 0 - 1; accept;",
    ),
    (
        "u32_compare",
        "comparisons are unsigned: 4294967295 > 2147483647",
        "",
        "if bgp_local_pref > 2147483647 then accept; reject;",
    ),
    (
        "mul_div",
        "multiplication wraps, division truncates",
        "",
        "bgp_med = 65536 * 65537; bgp_local_pref = 7 / 2; accept;",
    ),
    (
        "div_zero",
        "division by zero is a runtime error",
        "",
        "bgp_med = 5 / (net.len - net.len); accept;",
    ),
    (
        "path_mask_star",
        "path masks are anchored at both ends; * matches any run, including none",
        "",
        "if bgp_path ~ [= 65000 * =] then accept; if bgp_path ~ [= * 65002 =] then "
        "{ bgp_med = 2; accept; } reject;",
    ),
    (
        "path_mask_question",
        "? matches exactly one AS; a..b a range",
        "",
        "if bgp_path ~ [= ? 65001 =] then accept; if bgp_path ~ [= 65000 1..2 * =] then "
        "{ bgp_med = 3; accept; } reject;",
    ),
    (
        "path_mask_void",
        "a path mask against an undefined path is a runtime error",
        "",
        "if bgp_path ~ [= * =] then accept; reject;",
    ),
    (
        "path_contains",
        "N ~ bgp_path: the path contains the AS",
        "",
        "if 65001 ~ bgp_path then accept; reject;",
    ),
    (
        "pair_literal",
        "(a, b) built from parentheses is a pair; ~ is membership in bgp_community",
        "",
        "if (65000, 100) ~ bgp_community then accept; reject;",
    ),
    (
        "lc_literal",
        "(a, b, c) is a large community",
        "",
        "if (65000, 100, 200) ~ bgp_large_community then accept; reject;",
    ),
    (
        "pair_set",
        "pair sets: (a, *) and (a..b, c)",
        "",
        "if bgp_community ~ [(7, *)] then accept; if bgp_community ~ [(0..2, 2)] then "
        "{ bgp_med = 4; accept; } reject;",
    ),
    (
        "net_in",
        "net ~ P: net is P or inside it",
        "",
        "if net ~ 10.0.0.0/8 then accept; reject;",
    ),
    (
        "net_eq",
        "net = P: the same prefix and length",
        "",
        "if net = 10.0.0.0/8 then accept; reject;",
    ),
    (
        "net_ne",
        "net != P",
        "",
        "if net != 10.0.0.0/8 then accept; reject;",
    ),
    (
        "net_eq_set",
        "net = [set] is always false and != always true (a prefix is never the same as a set)",
        "",
        "if net = [10.0.0.0/8+] then reject; if net != [10.0.0.0/8+] then accept; reject;",
    ),
    (
        "prefix_set_range",
        "prefix sets with length ranges: 10.0.0.0/8{16,24}",
        "",
        "if net ~ [ 10.0.0.0/8{16,24} ] then accept; reject;",
    ),
    (
        "prefix_set_plus_minus",
        "P+ (P and longer) and P- (P and shorter)",
        "",
        "if net ~ [ 192.168.0.0/16+ ] then accept; if net ~ [ 10.1.0.0/24- ] then "
        "{ bgp_med = 9; accept; } reject;",
    ),
    (
        "ip_in_prefix",
        "ip ~ prefix",
        "",
        "if defined(bgp_next_hop) && bgp_next_hop ~ 10.0.0.0/8 then accept; reject;",
    ),
    (
        "ip_eq",
        "ip = ip (WireGuard reject); a void next hop is not equal",
        "",
        "if bgp_next_hop = 10.192.0.5 then reject; if defined(bgp_next_hop) && "
        "bgp_next_hop = 10.0.0.1 then reject; accept;",
    ),
    (
        "source_eq",
        "source = RTS_STATIC; source = RTS_BGP is false for static routes",
        "",
        "if source = RTS_BGP then reject; if source = RTS_STATIC then accept; reject;",
    ),
    (
        "source_in_set",
        "source ~ [ RTS_BGP ] (enum in set)",
        "",
        "if source ~ [ RTS_BGP ] then reject; if source ~ [ RTS_STATIC, RTS_DEVICE ] then "
        "accept; reject;",
    ),
    (
        "source_vs_int",
        "an enum and an int never compare the same (=) and are an error for <",
        "",
        "if source = 1 then reject; if source < 20 then accept; reject;",
    ),
    (
        "ifname_glob",
        "string ~ glob: anchored, * and ?, \\ escapes; BIRD's *? quirk (literal ?)",
        "",
        'if "cali123" ~ "cali*" && "eth0.cali" ~ "*.cali" && !("xcali1" ~ "cali*") && '
        '"a*b" ~ "a\\\\*b" && !("ab" ~ "a\\\\*b") && "tunl0" ~ "tunl?" && !("ab" ~ "*?") && '
        '"a?" ~ "*?" && ifname ~ "" && !(ifname ~ "?") then accept; reject;',
    ),
    (
        "krt_metric_temp",
        "krt_metric set in a filter is a temporary attribute read back in the same run",
        "",
        "krt_metric = 5; if krt_metric < 1024 then { krt_metric = 2147483647 - krt_metric; "
        "accept; } reject;",
    ),
    (
        "preference",
        "preference reads the route's (static 200) and sets the filtered copy's",
        "",
        "if preference = 200 then { preference = 300; accept; } reject;",
    ),
    (
        "preference_bounds",
        "preference above 65535 is a runtime error",
        "",
        "preference = 65536; accept;",
    ),
    (
        "community_add",
        "bgp_community.add adds a community once (no duplicate)",
        "",
        "bgp_community.add((65000, 100)); bgp_community.add((7, 7)); accept;",
    ),
    (
        "community_delete_filter",
        "delete/filter with pair sets",
        "",
        "bgp_community.delete([(65000, *)]); bgp_large_community.add((1, 2, 3)); accept;",
    ),
    (
        "large_community_add",
        "bgp_large_community.add",
        "",
        "bgp_large_community.add((100, 555, 107)); bgp_large_community.add((100, 555, 107)); "
        "accept;",
    ),
    (
        "path_prepend",
        "bgp_path.prepend on a path; on an undefined path it is a runtime error",
        "",
        "bgp_path.prepend(65000); accept;",
    ),
    (
        "bool_param",
        "bool parameters: calico_export_to_bgp_peers(true) vs (false)",
        "function bf_fb(bool internal_peer) { if (internal_peer) then { if net ~ 10.0.0.0/8 "
        "then reject; } }",
        "bf_fb(net.len = 24); accept;",
    ),
    (
        "function_value",
        "a function's return value used in an expression",
        "function bf_len() { return net.len; }",
        "if bf_len() = 24 then accept; reject;",
    ),
    (
        "if_non_bool",
        "if on a non-boolean is a runtime error",
        "",
        "if net.len then accept; reject;",
    ),
    (
        "and_non_bool",
        "&& on a non-boolean is a runtime error",
        "",
        "if net.len = 24 && net.len then accept; reject;",
    ),
    (
        "case_stmt",
        "case with ranges and else",
        "",
        "case net.len { 8: accept; 16..24: bgp_med = 16; accept; else: reject; }",
    ),
    (
        "methods",
        "net.ip, .mask(), bgp_path.len/.first/.last",
        "",
        "if net.ip.mask(8) = 10.0.0.0 && bgp_path.len = 2 && bgp_path.first = 65001 && "
        "bgp_path.last = 65002 then accept; reject;",
    ),
    (
        "unset",
        "unset() removes an attribute",
        "",
        "unset(bgp_local_pref); if defined(bgp_local_pref) then reject; accept;",
    ),
    (
        "proto_name",
        "proto is the name of the protocol the route came from",
        "",
        'if proto = "bf_routes" then accept; reject;',
    ),
    (
        "calico_export",
        "Calico's export filter on local routes: source is not RTS_BGP, krt_metric is void "
        "so it becomes 1024, and LOCAL_PREF = 2^31-1 - metric",
        "",
        "if (defined(source) && source = RTS_BGP && defined(bgp_local_pref)) then {\n"
        "  krt_metric = 2147483647 - bgp_local_pref;\n} else {\n"
        "  if (!defined(krt_metric)) then { krt_metric = 1024; }\n"
        "  bgp_local_pref = 2147483647 - krt_metric;\n}\n"
        "if ( net ~ 10.0.0.0/8 && krt_metric < 1024 ) then { accept; }\n"
        "if ( net ~ 10.0.0.0/8 ) then { accept; }\n"
        "reject;",
    ),
    (
        "calico_import",
        "Calico's import filter: LOCAL_PREF above 2^31-1-1024 gives preference 200",
        "",
        "if (defined(bgp_local_pref)&&(bgp_local_pref > 2147483647-1024)) then\n"
        "  preference = 200;\naccept;",
    ),
    (
        "calico_import_low_pref",
        "the same rule leaves the preference of other routes alone (on BGP routes 100)",
        "",
        "preference = 100;\nif (defined(bgp_local_pref)&&(bgp_local_pref > 2147483647-1024)) "
        "then\n  preference = 200;\naccept;",
    ),
]


def _config() -> str:
    parts = ["router id 10.192.0.2;\nprotocol device {}\n"]
    for name, _pins, defs, body in CASES:
        if defs:
            parts.append(defs + "\n")
        parts.append(f"filter f_{name} {{\n{body}\n}}\n")
    parts.append(ROUTES)
    return "".join(parts)


@pytest.fixture(scope="module")
def oracle(bird16, tmp_path_factory):
    """Per case: BIRD's routes and error lines, and bgpd's, over the same base routes.

    BIRD rate-limits its runtime-error log (one bucket per daemon: 5 at once, then 1 a
    second): each case where bgpd reports an error is asked of a BIRD of its own, started
    from the same file, whose bucket is full, rather than of the first one after a second's
    wait per case (17 such cases: 19 s of sleeping).
    """
    workdir = tmp_path_factory.mktemp("bf-oracle")
    o = Oracle(bird16, workdir)
    cfg = o.start(_config())
    conf = load(str(cfg))
    results = {}
    fresh: dict[str, Oracle] = {}
    try:
        base = o.show()
        ours_of = {}
        for name, *_ in CASES:
            program = compile_filter(conf.filters[f"f_{name}"], False)
            ours, our_errors = {}, []
            for route in base:
                verdict = program.run(view_of(route))
                if verdict.accepted:
                    ours[route.key()] = shown_of(route, verdict).comparable()
                elif verdict.error:
                    our_errors.append(verdict.error)
            ours_of[name] = (ours, our_errors)
        for name, (_ours, our_errors) in ours_of.items():
            if our_errors:
                d = workdir / name
                d.mkdir()
                fresh[name] = Oracle(bird16, d)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda f: f.start(_config()), fresh.values()))
        for name, (ours, our_errors) in ours_of.items():
            bird_o = fresh.get(name, o)
            if bird_o is not o:
                same = [(r.key(), r.comparable()) for r in bird_o.show()]
                assert same == [(r.key(), r.comparable()) for r in base], f"{name}: another base"
            before = len(bird_o.errors())
            bird = {r.key(): r.comparable() for r in bird_o.show(f"f_{name}")}
            bird_errors = bird_o.errors()[before:]
            results[name] = (bird, bird_errors, ours, our_errors)
    finally:
        o.stop()
        for f in fresh.values():
            f.stop()
    yield cfg, base, results


def test_the_routes_are_read_alike(oracle):
    """bgpd's own static import filter gives the routes BIRD has (the test's baseline)."""
    cfg, base, _results = oracle
    conf = load(str(cfg))
    imp = compile_filter(conf.protocol("bf_routes").import_filter, False, export=False)
    assert len(base) == 8
    for route in base:
        view = view_of(route)
        bare = RouteView(
            view.prefix, intern(AttrSet()), "static", dest=view.dest, proto="bf_routes"
        )
        verdict = imp.run(bare)
        assert verdict.accepted
        assert shown_of(route, verdict).comparable() == route.comparable(), route.prefix


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_filter_semantics_match_bird(oracle, name):
    cfg, _base, results = oracle
    bird, bird_errors, ours, our_errors = results[name]
    assert ours == bird
    # A route BIRD dropped with a runtime error, bgpd dropped with one on the same line
    # (BIRD prints "..." instead of a message it rate-limits).
    bird_lines = {int(e.split("line ")[1].split(":")[0]) for e in bird_errors if "line " in e}
    our_lines = {int(e.split(":")[1]) for e in our_errors if "did not return" not in e}
    assert bool(bird_errors) == bool(our_lines)
    assert bird_lines <= our_lines

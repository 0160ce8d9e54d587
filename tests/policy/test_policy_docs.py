"""The YAML in docs/policy.md and the design example compile (through a real YAML parser)."""

import re
from pathlib import Path

import yaml
from policy_helpers import attrs, fam, wire

from bgpd.policy import RouteInfo, compile_policies

DOC = Path(__file__).resolve().parents[2] / "docs" / "policy.md"

FULL_EXAMPLE = """
policies:
  calico-export:
    default: reject
    terms:
      - name: pod-blocks
        match:
          prefix: ["10.244.0.0/16 ge 26 le 26", "2001:db8::/48 le 64"]
          community: ["65000:100", "no-export"]
          large_community: ["64512:1:2"]
          as_path: ["^65001 ", "_65002$", "^$"]
          neighbor: ["192.0.2.1", "10.0.0.0/24"]
          source: [bgp, static, kernel, connected, local]
          interface: ["cali*", "-kube*"]
          origin: igp
          next_hop: ["192.0.2.0/24"]
        set:
          local_pref: 200
          med: 10
          community_add: ["65000:1"]
          community_remove: ["65000:2", "65000:*"]
          community_set: []
          large_community_add: ["64512:1:1"]
          large_community_remove: ["64512:*:*"]
          as_path_prepend: 2
          next_hop: self
          origin: igp
        action: accept
"""


def test_doc_examples_compile():
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 5
    names = set()
    for block in blocks:
        names |= set(compile_policies(yaml.safe_load(block)["policies"]))
    assert {"calico-export", "tor-import", "kernel-export", "rtbh"} <= names


def test_doc_calico_example_behaves():
    block = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)[1]
    p = compile_policies(yaml.safe_load(block)["policies"])["calico-export"]
    a = attrs(origin=0)
    for prefix, kind, ok in [
        ("10.244.5.192/26", "static", True),
        ("fd00:10:244:0:1::/122", "static", True),
        ("10.244.5.193/32", "static", False),
        ("fd00:10:244::5/128", "static", False),
        ("10.244.5.192/26", "bgp", False),
        ("10.96.0.0/12", "static", False),
    ]:
        assert (p.evaluate(a, wire(prefix), fam(prefix), RouteInfo(kind)) is not None) is ok


def test_full_example_compiles_and_runs():
    p = compile_policies(yaml.safe_load(FULL_EXAMPLE)["policies"])["calico-export"]
    assert not p.attr_only
    a = attrs(
        origin=0,
        path=[65001, 65002],
        next_hop=bytes([192, 0, 2, 7]),
        communities=[65000 << 16 | 2, 65000 << 16 | 100],
        large_communities=[(64512, 1, 2)],
    )
    route = RouteInfo(
        "kernel", "10.0.0.5", "cali12345", local_as=64999, next_hop_self=bytes([10, 0, 0, 1])
    )
    r = p.evaluate(a, wire("10.244.1.0/26"), fam("10.244.1.0/26"), route)
    assert r.local_pref == 200
    assert r.med == 10
    assert r.communities == (65000 << 16 | 1,)
    assert r.large_communities == ((64512, 1, 1),)
    assert r.as_path[0][1] == (64999, 64999, 65001, 65002)
    assert r.next_hop == bytes([10, 0, 0, 1])
    route.interface = "kube-ipvs0"
    assert p.evaluate(a, wire("10.244.1.0/26"), fam("10.244.1.0/26"), route) is None

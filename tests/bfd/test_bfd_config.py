"""The ``bfd:`` section: what it accepts, and the key and reason of what it refuses."""

import pytest

from bgpd.bfd.auth import Auth
from bgpd.bfd.config import BfdConfig, BfdConfigError, parse, parse_interval, problems
from bgpd.bfd.packet import AuthType
from bgpd.bfd.session import SessionParams


def test_off_and_defaults():
    assert parse(None) is None and parse(False) is None
    default = BfdConfig(SessionParams())
    assert parse(True) == default and parse({}) == default
    assert default.params.min_tx == 300_000 and default.params.multiplier == 3


def test_the_documented_example():
    cfg = parse(
        {
            "min_tx": "300ms",
            "min_rx": "300ms",
            "multiplier": 3,
            "strict": False,
            "multihop": False,
            "auth": {"type": "keyed-sha1", "key_id": 1, "secret": "s3cret"},
        }
    )
    assert cfg.params == SessionParams(
        min_tx=300_000,
        min_rx=300_000,
        multiplier=3,
        auth=Auth.single(AuthType.KEYED_SHA1, 1, "s3cret"),
    )
    assert not cfg.strict and not cfg.multihop


@pytest.mark.parametrize(
    "value, us",
    [
        (300, 300_000),
        (50, 50_000),
        ("100ms", 100_000),
        ("0.25s", 250_000),
        ("2s", 2_000_000),
        ("150000us", 150_000),
        ("10 ms", 10_000),
        (1.5, 1_500),
    ],  # fmt: skip
)
def test_intervals(value, us):
    assert parse_interval(value, "min_tx", minimum=1) == us


def test_everything_set():
    cfg = parse(
        {
            "min_tx": 100,
            "min_rx": "200ms",
            "multiplier": 5,
            "idle_tx": "2s",
            "strict": True,
            "multihop": True,
            "min_ttl": 250,
            "passive": True,
            "auth": {
                "type": "meticulous-keyed-md5",
                "key_id": 2,
                "keys": [{"id": 1, "secret": "old"}, {"id": 2, "secret": "new"}],
            },
        }
    )
    p = cfg.params
    assert (p.min_tx, p.min_rx, p.multiplier, p.idle_tx, p.passive) == (
        100_000,
        200_000,
        5,
        2_000_000,
        True,
    )
    assert cfg.strict and cfg.multihop and cfg.min_ttl == 250
    assert p.auth.type == AuthType.METICULOUS_KEYED_MD5
    assert p.auth.keys == {1: b"old", 2: b"new"} and p.auth.send_key == 2
    assert parse({"interface": "eth0"}).interface == "eth0"


@pytest.mark.parametrize(
    "value, key, reason",
    [
        ("yes", "", "expected a mapping, true or false"),
        (3, "", "expected a mapping"),
        ({"min_txx": 1}, "min_txx", "unknown key"),
        ({"min_tx": "fast"}, "min_tx", "expected a duration"),
        ({"min_tx": True}, "min_tx", "expected a duration"),
        ({"min_tx": 5}, "min_tx", "below the minimum of 10 ms"),
        ({"min_rx": "5000s"}, "min_rx", "above the maximum"),
        ({"idle_tx": "500ms"}, "idle_tx", "below the minimum of 1000 ms"),
        ({"multiplier": 0}, "multiplier", "out of range (1..255)"),
        ({"multiplier": "3"}, "multiplier", "expected an integer"),
        ({"strict": "true"}, "strict", "expected true or false"),
        ({"min_ttl": 250}, "min_ttl", "only for multihop"),
        ({"multihop": True, "min_ttl": 0}, "min_ttl", "out of range"),
        ({"multihop": True, "interface": "eth0"}, "interface", "not bound to an interface"),
        ({"interface": "a-name-longer-than-15"}, "interface", "expected an interface name"),
        ({"auth": "secret"}, "auth", "expected a mapping"),
        ({"auth": {"secret": "x"}}, "auth.type", "required"),
        ({"auth": {"type": "md5", "secret": "x"}}, "auth.type", "is not one of"),
        ({"auth": {"type": "keyed-md5"}}, "auth.secret", "required"),
        ({"auth": {"type": "keyed-md5", "secret": ""}}, "auth.secret", "non-empty"),
        ({"auth": {"type": "keyed-md5", "secret": "x" * 17}}, "auth.secret", "at most 16"),
        ({"auth": {"type": "keyed-sha1", "secret": "x" * 21}}, "auth.secret", "at most 20"),
        ({"auth": {"type": "simple", "secret": "x" * 17}}, "auth.secret", "at most 16"),
        ({"auth": {"type": "simple", "secret": "x", "key_id": 256}}, "auth.key_id", "out of range"),
        ({"auth": {"type": "simple", "secret": "x", "salt": 1}}, "auth.salt", "unknown key"),
        ({"auth": {"type": "simple", "keys": "x"}}, "auth.keys", "expected a list"),
        ({"auth": {"type": "simple", "keys": [{"id": 1}]}}, "auth.keys[0].secret", "required"),
        (
            {
                "auth": {
                    "type": "simple",
                    "keys": [{"id": 1, "secret": "a"}, {"id": 1, "secret": "b"}],
                }
            },
            "auth.keys[1].id",
            "listed twice",
        ),
        (
            {"auth": {"type": "simple", "key_id": 3, "keys": [{"id": 1, "secret": "a"}]}},
            "auth.key_id",
            "not among auth.keys",
        ),
    ],
)
def test_errors_name_the_key_and_why(value, key, reason):
    with pytest.raises(BfdConfigError) as e:
        parse(value)
    assert e.value.key == key
    assert reason in e.value.reason
    assert str(e.value).startswith(f"{key}: " if key else reason[:5])


def test_problems_lists_every_bad_key():
    found = problems({"min_tx": 1, "multiplier": 0, "strict": "no", "min_rx": 300})
    assert sorted(e.key for e in found) == ["min_tx", "multiplier", "strict"]
    assert problems({"min_tx": "100ms"}) == []
    assert [e.key for e in problems("on")] == [""]
    assert [e.key for e in problems({"multihop": True, "min_ttl": 300})] == ["min_ttl"]

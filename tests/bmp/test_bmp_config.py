"""The ``bmp`` config section: stations, defaults, and errors naming ``bmp[i].key``."""

import pytest

from bgpd.bmp import StationConfig, parse_bmp
from bgpd.config.errors import ConfigError


def test_stations_and_defaults():
    assert parse_bmp(None) == ()
    assert parse_bmp([]) == ()
    (st,) = parse_bmp([{"address": "192.0.2.50"}])
    assert st == StationConfig(address="192.0.2.50")
    assert (st.port, st.retry, st.retry_max, st.buffer, st.stats_interval) == (
        1790,
        30.0,
        720.0,
        16 << 20,
        60.0,
    )
    assert (st.adj_rib_in, st.loc_rib, st.adj_rib_out) == (True, True, False)
    a, b = parse_bmp(
        [
            {
                "address": "2001:db8::50",
                "port": 11019,
                "local_address": "2001:db8::1",
                "buffer": "4MiB",
            },
            {
                "address": "192.0.2.51",
                "retry": "5s",
                "retry_max": "2m",
                "stats_interval": 0,
                "adj_rib_out": True,
                "loc_rib": False,
            },
        ]
    )
    assert (a.address, a.port, a.local_address, a.buffer) == (
        "2001:db8::50",
        11019,
        "2001:db8::1",
        4 << 20,
    )
    assert (b.retry, b.retry_max, b.stats_interval, b.adj_rib_out, b.loc_rib) == (
        5.0,
        120.0,
        0.0,
        True,
        False,
    )
    assert parse_bmp({"address": "192.0.2.50"}) == (
        StationConfig(address="192.0.2.50"),
    )  # one, no list


@pytest.mark.parametrize(
    "section, key, reason",
    [
        (
            "192.0.2.50",
            "bmp",
            "expected a list of stations [{address, port}], got string '192.0.2.50'",
        ),
        ([{"port": 1790}], "bmp[0].address", "required key is missing"),
        (
            [{"address": "collector"}],
            "bmp[0].address",
            "'collector' is not an IPv4 or IPv6 address",
        ),
        (
            [{"address": "192.0.2.50", "prot": 1}],
            "bmp[0].prot",
            "unknown key (did you mean 'port'?)",
        ),
        ([{"address": "192.0.2.50", "port": 0}], "bmp[0].port", "0 is out of range (1..65535)"),
        (
            [{"address": "192.0.2.50", "port": "1790"}],
            "bmp[0].port",
            "expected an integer, got string '1790' (write it without quotes)",
        ),
        (
            [{"address": "192.0.2.50", "buffer": "1KiB"}],
            "bmp[0].buffer",
            "1024 octets is out of range (65536..4294967296)",
        ),
        (
            [{"address": "192.0.2.50", "retry": "1m", "retry_max": "30s"}],
            "bmp[0].retry_max",
            "retry_max (30s) is shorter than retry (60s)",
        ),
        (
            [{"address": "192.0.2.50", "loc_rib": "yes"}],
            "bmp[0].loc_rib",
            "expected true or false, got string 'yes' (write it without quotes)",
        ),
        (
            [{"address": "192.0.2.50", "local_address": "2001:db8::1"}],
            "bmp[0].local_address",
            "2001:db8::1 and the station address 192.0.2.50 are not of one family",
        ),
        (
            [{"address": "192.0.2.50", "adj_rib_in": False, "loc_rib": False}],
            "bmp[0].adj_rib_in",
            "monitors nothing: enable adj_rib_in, loc_rib or adj_rib_out",
        ),
        (
            [
                {"address": "192.0.2.50"},
                {"address": "192.0.2.51"},
                {"address": "192.0.2.50", "port": 1790},
            ],
            "bmp[2]",
            "192.0.2.50:1790 is listed twice (also [0])",
        ),
    ],
)
def test_errors_name_the_station_and_the_key(section, key, reason):
    with pytest.raises(ConfigError) as e:
        parse_bmp(section, "bgpd.yaml")
    assert (e.value.file, e.value.key, e.value.reason) == ("bgpd.yaml", key, reason)

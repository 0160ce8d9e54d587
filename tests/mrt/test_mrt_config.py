"""The ``mrt`` config section: values, defaults, and errors that name the key and the reason."""

import pytest

from bgpd.config.errors import ConfigError
from bgpd.mrt.config import MrtConfig, parse_mrt


def test_defaults_and_units():
    assert parse_mrt(None) is None
    assert parse_mrt({}) == MrtConfig()
    cfg = parse_mrt(
        {
            "updates": "/var/log/bgpd/u.%Y%m%d.%H%M.mrt",
            "rotate": "15m",
            "flush_interval": "500ms",
            "buffer": "8MiB",
        }
    )
    assert cfg == MrtConfig(
        updates="/var/log/bgpd/u.%Y%m%d.%H%M.mrt", rotate=900.0, flush_interval=0.5, buffer=8 << 20
    )
    assert parse_mrt({"updates": "u.mrt", "rotate": 0}).rotate == 0
    assert parse_mrt({"updates": "u.%H", "rotate": "1h"}).rotate == 3600
    assert parse_mrt({"updates": "u.%s", "rotate": 120}).rotate == 120


@pytest.mark.parametrize(
    "section, key, reason",
    [
        (
            "yes",
            "mrt",
            "expected a mapping such as {updates: FILE-PATTERN, rotate: 15m}, got string 'yes'",
        ),
        ({"update": "x"}, "mrt.update", "unknown key (did you mean 'updates'?)"),
        (
            {"updates": 5},
            "mrt.updates",
            "expected a file name pattern such as updates.%Y%m%d.%H%M, got integer 5",
        ),
        (
            {"updates": "/var/log/"},
            "mrt.updates",
            "'/var/log/' names a directory: add a file name pattern",
        ),
        (
            {"updates": "u.mrt", "rotate": "15 minutes"},
            "mrt.rotate",
            "'15 minutes' is not a duration (write 30s, 15m, 1h or seconds)",
        ),
        ({"updates": "u.%H%M", "rotate": "10s"}, "mrt.rotate", "10s is out of range (0 or 1m..7d)"),
        (
            {"updates": "u.%H%M", "rotate": True},
            "mrt.rotate",
            "expected a duration such as 30s, 15m or 1h, got boolean true",
        ),
        (
            {"buffer": "lots"},
            "mrt.buffer",
            "'lots' is not a size (write 512KiB, 64MiB, 1GiB or octets)",
        ),
        ({"buffer": 10}, "mrt.buffer", "10 octets is out of range (65536..17179869184)"),
        (
            {"updates": "u.%Y%m%d.%H", "rotate": "15m"},
            "mrt.updates",
            "every 15m period would get the same file name 'u.20231114.22': put time fields in the pattern (%Y%m%d.%H%M) or set rotate: 0",
        ),
        (
            {"updates": "updates.mrt"},
            "mrt.updates",
            "every 15m period would get the same file name 'updates.mrt': put time fields in the pattern (%Y%m%d.%H%M) or set rotate: 0",
        ),
    ],
)
def test_errors_name_the_key_and_the_reason(section, key, reason):
    with pytest.raises(ConfigError) as e:
        parse_mrt(section, "bgpd.yaml")
    assert (e.value.file, e.value.key, e.value.reason) == ("bgpd.yaml", key, reason)
    assert str(e.value) == f"bgpd.yaml: {key}: {reason}"

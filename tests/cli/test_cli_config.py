"""bgpd check and bgpd run (with a stand-in for bgpd.speaker)."""

import sys
import types

import pytest
from click.testing import CliRunner

from bgpd.cli.main import main

GOOD = """\
router_id: 192.0.2.10
asn: 64512
neighbors:
  - address: 192.0.2.1
    asn: 65001
"""

BAD = GOOD + "    hold_time: 2\n"


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    return str(path)


@pytest.fixture
def bad(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    return str(path)


def invoke(*args, **kw):
    return CliRunner().invoke(main, list(args), **kw)


def test_check_good(good):
    r = invoke("check", "-c", good)
    assert (r.exit_code, r.stdout, r.stderr) == (0, f"{good}: ok\n", "")


def test_check_bad(bad):
    r = invoke("check", "--config", bad)
    assert r.exit_code == 2
    assert r.stdout == ""
    assert r.stderr == (
        f"{bad}: neighbors[0].hold_time: 2 is not allowed: use 0 (no keepalives) or "
        "3..65535 (RFC 4271 §4.2)\n"
    )


def test_check_missing_file(tmp_path):
    path = tmp_path / "missing.yaml"
    r = invoke("check", "-c", str(path))
    assert r.exit_code == 2
    assert r.stderr.startswith(f"{path}: cannot read the file")


def test_check_config_from_environment(good):
    assert invoke("check", env={"BGPD_CONFIG": good}).exit_code == 0


def test_check_needs_a_config(monkeypatch):
    monkeypatch.delenv("BGPD_CONFIG", raising=False)
    r = invoke("check")
    assert r.exit_code == 2
    assert "Missing option '-c' / '--config'" in r.stderr


@pytest.fixture
def fake_speaker(monkeypatch):
    calls = []

    def run(config, config_path, log_level, restart=False):
        calls.append((config, config_path, log_level, restart))
        return 3

    module = types.ModuleType("bgpd.speaker")
    module.run = run
    monkeypatch.setitem(sys.modules, "bgpd.speaker", module)
    return calls


def test_run_hands_the_config_to_the_speaker(good, fake_speaker):
    r = invoke("run", "-c", good, "--log-level", "DEBUG")
    assert r.exit_code == 3  # the speaker's exit code
    ((config, path, level, restart),) = fake_speaker
    assert config.router_id == "192.0.2.10"
    assert (path, level, restart) == (good, "debug", False)


def test_run_default_log_level(good, fake_speaker):
    invoke("run", "-c", good)
    assert fake_speaker[0][2] == "info"


@pytest.mark.parametrize("flag", ["-R", "--graceful-restart"])
def test_run_graceful_restart_flag(good, fake_speaker, flag):
    """``bgpd run -R``, as ``bird -R`` and ``gobgpd -r``: this start is a graceful restart."""
    assert invoke("run", "-c", good, flag).exit_code == 3
    assert fake_speaker[0][3] is True


def test_run_help_names_the_graceful_restart_flag():
    r = invoke("run", "-h")
    assert r.exit_code == 0
    assert "-R, --graceful-restart" in r.stdout


def test_run_bad_config_does_not_start(bad, fake_speaker):
    r = invoke("run", "-c", bad)
    assert r.exit_code == 2
    assert "neighbors[0].hold_time" in r.stderr
    assert fake_speaker == []


def test_run_bad_log_level(good, fake_speaker):
    r = invoke("run", "-c", good, "--log-level", "loud")
    assert r.exit_code == 2
    assert fake_speaker == []


def test_version_and_help():
    r = invoke("--version")
    assert r.exit_code == 0 and r.stdout.startswith("bgpd, version ")
    r = invoke("-h")
    assert r.exit_code == 0
    for command in ("run", "check", "show", "neighbor", "reload", "decode"):
        assert command in r.stdout


def test_shell_completion_script():
    r = invoke(env={"_BGPD_COMPLETE": "bash_source"}, prog_name="bgpd")
    assert r.exit_code == 0
    assert "_bgpd_completion" in r.stdout

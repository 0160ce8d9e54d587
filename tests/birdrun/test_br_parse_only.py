"""``bgpd-bird -p -c FILE`` / ``bgpd-bird6 -p -c FILE``: confd's check command.

Every one of the 528 golden files of confd's corpus, each given alone to the daemon of its
family (``bird*.cfg`` to bgpd-bird, ``bird6*.cfg`` to bgpd-bird6), gets the exit status and
the message BIRD 1.6.8 gives it (the entry point's ``main``, in-process, for all of them;
the installed executables for a sample and for broken files, byte for byte on stderr).
Calico's fork accepts ``krt_tunnel``; Debian's BIRD 1.6.8 refuses it, so for the two files
that set it bgpd must answer 0 where BIRD answers 1.
"""

from __future__ import annotations

import io
import subprocess
from contextlib import redirect_stderr
from pathlib import Path

import br_lab as lab
import pytest
from needs import skip_or_fail

from bgpd.birdctl import process

CORPUS = Path("calico-confd/confd/tests/compiled_templates")

BROKEN = {
    "syntax.cfg": "router id 10.0.0.1;\nprotocol static {\n  route 10.0.0.0/8 blackhole\n}\n",
    "symbol.cfg": (
        "router id 10.0.0.1;\nprotocol kernel { export filter nosuch; }\nprotocol device { }\n"
    ),
    "include.cfg": 'router id 10.0.0.1;\ninclude "inc_broken.cfg";\nprotocol device { }\n',
    "inc_broken.cfg": "function f() {\n  if net ~ 10.0.0.0/8 then accept\n}\n",
    "empty.cfg": "# nothing\n",
    "v6.cfg": "router id 10.0.0.1;\nprotocol static { route 2001:db8::/32 blackhole; }\n",
}


@pytest.fixture(scope="module")
def goldens(shared_corpora) -> Path:
    path = shared_corpora / CORPUS
    if not path.is_dir():
        skip_or_fail(f"{path} is absent")
    return path


def golden_files(goldens: Path) -> list[tuple[Path, int]]:
    files = sorted(goldens.rglob("bird*.cfg"))
    return [(p, 6 if p.name.startswith("bird6") else 4) for p in files]


def ours(path: Path, family: int) -> tuple[int, str]:
    err = io.StringIO()
    name = "bird6" if family == 6 else "bird"
    with redirect_stderr(err):
        status = process.main([name, "-p", "-c", str(path)], family)
    return status, err.getvalue()


def birds(bird16: Path, path: Path, family: int) -> tuple[int, str]:
    exe = bird16 / ("bird6" if family == 6 else "bird")
    r = subprocess.run([str(exe), "-p", "-c", str(path)], capture_output=True, text=True)
    return r.returncode, r.stderr.replace(f"{exe}: ", "bird: ")


def test_every_golden_file_as_bird(goldens, bird16):
    files = golden_files(goldens)
    assert len(files) == 528
    accepted = krt_tunnel = 0
    for path, family in files:
        mine = ours(path, family)
        theirs = birds(bird16, path, family)
        if theirs[0] and theirs[1].endswith("You may set only variables.\n"):
            # the fork's attribute, refused by Debian's BIRD where it is set: Calico's BIRD
            # accepts it (a bird_ipam.cfg alone then has no protocol, as BIRD says)
            where = theirs[1][len("bird: ") :].split(" ", 1)[0]
            file, line, _col = where.rsplit(":", 2)
            assert "krt_tunnel" in Path(file).read_text().splitlines()[int(line) - 1]
            krt_tunnel += 1
            if path.name.endswith("_ipam.cfg"):
                assert mine[0] == 1 and mine[1].endswith(
                    "No protocol is specified in the config file\n"
                )
            else:
                assert mine == (0, ""), path
            continue
        assert mine == theirs, path
        accepted += mine[0] == 0
    assert krt_tunnel == 2  # the two main files whose bird_ipam.cfg sets it
    # every main file, with its includes, is accepted; the _aggr and _ipam files alone get
    # BIRD's own refusals (no protocol, a function of the other file called...)
    mains = [p for p, f in files if p.name in ("bird.cfg", "bird6.cfg")]
    assert len(mains) == 176
    assert all(ours(p, f) == (0, "") for p, f in files if p in mains)
    assert accepted == 174 + 75


@pytest.mark.parametrize("case", ["mesh/hash", "explicit_peering/route_reflector"])
@pytest.mark.parametrize("family", [4, 6])
def test_the_executables_on_golden_files(goldens, case, family):
    exe = lab.BGPD_BIRD6 if family == 6 else lab.BGPD_BIRD
    path = goldens / case / ("bird6.cfg" if family == 6 else "bird.cfg")
    r = subprocess.run([exe, "-p", "-c", str(path)], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_a_staged_file_as_confd_checks_it(goldens, tmp_path):
    """confd's check_cmd runs ``bird -p -c DEST/.bird.cfgNNNN``: the staged main file in
    the destination directory, its includes the ones installed there."""
    src = goldens / "mesh" / "hash"
    for name in ("bird_aggr.cfg", "bird_ipam.cfg"):
        (tmp_path / name).write_text((src / name).read_text())
    staged = tmp_path / ".bird.cfg123456789"
    staged.write_text((src / "bird.cfg").read_text())
    r = subprocess.run([lab.BGPD_BIRD, "-p", "-c", str(staged)], capture_output=True, text=True)
    assert (r.returncode, r.stderr) == (0, "")
    (tmp_path / "bird_ipam.cfg").write_text("function broken( {\n")
    r = subprocess.run([lab.BGPD_BIRD, "-p", "-c", str(staged)], capture_output=True, text=True)
    assert r.returncode == 1
    # named as BIRD names an include: the including file's directory and the name
    assert r.stderr == f"bird: {tmp_path}/bird_ipam.cfg:1:18 syntax error\n"


def test_broken_files_as_bird(bird16, tmp_path):
    for name, text in BROKEN.items():
        (tmp_path / name).write_text(text)
    for name in BROKEN:
        if name.startswith("inc_"):
            continue
        for family in (4, 6):
            path = tmp_path / name
            exe = lab.BGPD_BIRD6 if family == 6 else lab.BGPD_BIRD
            r = subprocess.run(
                [exe, "-p", "-c", name], capture_output=True, text=True, cwd=tmp_path
            )
            theirs = subprocess.run(
                [str(bird16 / ("bird6" if family == 6 else "bird")), "-p", "-c", name],
                capture_output=True,
                text=True,
                cwd=tmp_path,
            )
            expect = theirs.stderr.replace(f"{bird16 / ('bird6' if family == 6 else 'bird')}: ", "")
            assert (r.returncode, r.stderr) == (theirs.returncode, expect), (name, family)
            if name != "v6.cfg" or family == 4:
                assert r.returncode == 1 and r.stderr.startswith("bird: "), (name, r.stderr)
            assert path.exists()


def test_parse_only_touches_no_socket(tmp_path):
    cfg = tmp_path / "bird.cfg"
    cfg.write_text("router id 10.0.0.1;\nprotocol device { }\n")
    sock = tmp_path / "bird.ctl"
    r = subprocess.run(
        [lab.BGPD_BIRD, "-p", "-c", str(cfg), "-s", str(sock)], capture_output=True, text=True
    )
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert not sock.exists()

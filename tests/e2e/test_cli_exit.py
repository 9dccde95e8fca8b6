"""``oais.cli.run``, the ``oais`` command's entry point: it ends the process without tearing the
interpreter down, and must lose nothing by it (status, output, exit handlers, running threads)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

EXIT_USAGE = 2


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OAIS_HOME", "OAIS_CATALOG_URL")}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)


RUN = "import sys; from oais.cli import run; sys.argv = ['oais', *sys.argv[1:]]; run()"


def test_status_and_the_whole_output_through_a_pipe(tmp_path: Path) -> None:
    home = tmp_path / "home"
    r = _python(RUN, "init", "--home", str(home), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["config_created"] is True  # complete JSON: stdout was flushed
    r = _python(RUN, "aip", "show", "urn:uuid:00000000-0000-0000-0000-000000000000", "--home", str(home))
    assert r.returncode == 1 and "no aip" in r.stderr.lower()
    r = _python(RUN, "aip", "list", "--home", str(tmp_path / "nowhere"))
    assert r.returncode == EXIT_USAGE and "configuration error" in r.stderr


def test_exit_handlers_still_run(tmp_path: Path) -> None:
    code = "import atexit; atexit.register(lambda: print('handler ran', flush=True)); " + RUN
    r = _python(code, "aip", "list", "--home", str(tmp_path / "nowhere"))
    assert r.returncode == EXIT_USAGE
    assert r.stdout.strip().endswith("handler ran")


def test_a_running_thread_is_waited_for(tmp_path: Path) -> None:
    code = ("import threading, time\n"
            "threading.Thread(target=lambda: (time.sleep(0.5), print('thread done', flush=True))).start()\n"
            + RUN)
    r = _python(code, "aip", "list", "--home", str(tmp_path / "nowhere"))
    assert r.returncode == EXIT_USAGE
    assert "thread done" in r.stdout


def test_argparse_exits_are_unchanged() -> None:
    r = _python(RUN, "--help")
    assert r.returncode == 0 and "ingest" in r.stdout
    r = _python(RUN, "no-such-command")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def _with_closed_output(code: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run with a standard output nobody reads: its pipe's read end is closed before anything is written."""
    env = {k: v for k, v in os.environ.items() if k not in ("OAIS_HOME", "OAIS_CATALOG_URL")}
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-c", code, *args], stdout=write, stderr=subprocess.PIPE,
                              env=env, cwd=REPO, timeout=300)
    finally:
        os.close(write)


def test_a_closed_output_ends_quietly_with_status_141(tmp_path: Path) -> None:
    """``oais init --json | head -c 0``: the command still does its work, then stops with 141 and
    prints no traceback; a command writing more than a buffer's worth stops at its first write."""
    home = tmp_path / "home"
    r = _with_closed_output(RUN, "init", "--home", str(home), "--json")
    assert r.returncode == 141, r.stderr
    assert b"Traceback" not in r.stderr and b"Exception ignored" not in r.stderr, r.stderr
    assert (home / "oais.toml").is_file()  # the work was done
    big = ("import oais.cli as cli\n"
           "def noisy(args):\n"
           "    print('x' * 1_000_000)\n"
           "    return 0\n"
           "cli.cmd_init = noisy\n" + RUN)
    r = _with_closed_output(big, "init", "--home", str(home))
    assert r.returncode == 141, r.stderr
    assert b"Traceback" not in r.stderr and b"Exception ignored" not in r.stderr, r.stderr

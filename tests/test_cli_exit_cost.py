"""A run's exit cost (issue 14): the interpreter's finalization does not walk the heap."""

from __future__ import annotations

import atexit
import gc
import subprocess
import sys

from crmclean import cli


def test_a_run_freezes_the_heap_at_exit_once(monkeypatch):
    registered = []
    monkeypatch.setattr(atexit, "register", registered.append)
    monkeypatch.setattr(cli, "_FREEZE_AT_EXIT", [])
    cli._freeze_at_exit()
    cli._freeze_at_exit()
    assert registered == [gc.freeze]


def test_the_frozen_exit_keeps_output_and_exit_code(tmp_path):
    """A run that fails on a usage error still exits 2 and says why, with the hook in place."""
    code = "import sys; from crmclean import cli; cli._freeze_at_exit(); print('written', flush=False); sys.exit(2)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == "written\n"

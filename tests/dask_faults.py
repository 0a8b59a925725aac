"""Fault injection for tests/test_dask.py, imported by the Dask workers the tests start (their
PYTHONPATH holds this folder): a worker process that dies when it starts a chosen task."""

from __future__ import annotations

import os
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin


class DieOnTask(WorkerPlugin):
    """The worker process exits at once (as if killed) when it starts a task whose key begins
    with `prefix`. With `marker`, only the first worker to get there dies (the marker file
    says it happened); without, every worker that starts one does."""

    def __init__(self, prefix: str, marker: str | None = None):
        self.prefix, self.marker = prefix, marker

    def transition(self, key, start, finish, **kwargs) -> None:
        name = key[0] if isinstance(key, tuple) else key
        if finish != "executing" or not str(name).startswith(self.prefix):
            return
        if self.marker is not None:
            try:
                Path(self.marker).touch(exist_ok=False)  # atomic: one worker wins
            except FileExistsError:
                return
        os._exit(1)

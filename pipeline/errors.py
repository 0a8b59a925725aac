"""Errors a user sees as one clear line (the CLI prints them without a traceback)."""

from __future__ import annotations

import errno


class CrmcleanError(Exception):
    """Base class: the message is shown to the user as is."""


class InputFileError(CrmcleanError):
    """A file that cannot be read at all: the run stops before anything is published."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class OutputError(CrmcleanError):
    """The output folder cannot be written (not a folder, read-only, disk full): the run stops
    before publishing, so the master is unchanged."""

    def __init__(self, path, out_dir, reason: str, full: bool = False):
        self.path = str(path)
        where = self.path if self.path == str(out_dir) else f"{self.path} (output folder {out_dir})"
        todo = "free space and run again" if full else "choose a writable --out"
        super().__init__(f"cannot write {where}: {reason}. Nothing was published; {todo}")


def output_error(exc: BaseException, out_dir) -> OutputError | None:
    """The OutputError for an OSError raised while writing under `out_dir` (None: not one)."""
    if not isinstance(exc, OSError) or isinstance(exc, (TimeoutError, ConnectionError)):
        return None
    from pathlib import Path

    root = Path(out_dir).absolute()
    path = Path(exc.filename).absolute() if exc.filename else None
    if path is None and exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        return None  # a failed write names no file; other nameless errors are not the folder's
    if path is not None and path != root and root not in path.parents:
        return None  # not an output file (an input, a lock): reported as it is
    full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return OutputError(path or root, root, exc.strerror or str(exc), full=full)


class RulesError(CrmcleanError):
    """A malformed rules/ or expectations/ file, named with what is wrong."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ValidationFailed(CrmcleanError):
    """A critical expectation failed: the publish is refused, the master is untouched."""


class RunLocked(CrmcleanError):
    """Another run is publishing into the same master."""

"""Errors a user sees as one clear line (the CLI prints them without a traceback)."""

from __future__ import annotations


class CrmcleanError(Exception):
    """Base class: the message is shown to the user as is."""


class InputFileError(CrmcleanError):
    """A file that cannot be read at all: the run stops before anything is published."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


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

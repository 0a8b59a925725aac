"""A run's fixed cost (issue 14): what the import of Great Expectations leaves is frozen out of
the garbage collector, so the run's full collections and the exit's do not walk it again."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _fresh_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300, check=True
    )
    return done.stdout.strip()


def test_loading_the_suites_freezes_what_the_ge_import_left():
    out = _fresh_python(
        """
        import gc
        from crmclean import validate
        from crmclean.settings import DEFAULT_EXPECTATIONS_DIR
        before = gc.get_freeze_count()
        suites = validate.load_suites(DEFAULT_EXPECTATIONS_DIR)
        frozen = gc.get_freeze_count()
        validate.load_great_expectations()  # once per process: nothing more is frozen
        print(before, frozen, gc.get_freeze_count(), gc.isenabled(), len(suites["standardized"].expectations) > 0)
        """
    )
    before, frozen, again, enabled, loaded = out.split()
    assert int(before) == 0
    assert int(frozen) > 100_000  # GE's classes and models, pandas', crmclean's modules
    assert again == frozen
    assert enabled == "True" and loaded == "True"


def test_a_collector_switched_off_stays_off():
    out = _fresh_python(
        """
        import gc
        gc.disable()
        from crmclean import validate
        validate.load_great_expectations()
        print(gc.isenabled(), gc.get_freeze_count() > 0)
        """
    )
    assert out == "False True"

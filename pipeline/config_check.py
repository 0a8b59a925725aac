"""`python -m crmclean.config_check [DIR]`: load and validate a rules folder (default: the
packaged rules) and print the first error, without running anything. A module of its own
because crmclean.config must not import crmclean.settings (settings imports config)."""

from __future__ import annotations

import sys

from .errors import RulesError
from .settings import DEFAULT_RULES_DIR, load_rules


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        load_rules(args[0] if args else DEFAULT_RULES_DIR)
    except RulesError as exc:
        print(exc, file=sys.stderr)
        return 1
    print("rules OK")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

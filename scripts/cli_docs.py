"""Write docs/cli.md from the parser itself, so the CLI help and its docs never drift.

.venv/bin/python scripts/cli_docs.py > docs/cli.md
"""

from __future__ import annotations

import argparse
import os
import sys

from facesearch.cli import build_parser


def sections(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    out = [f"## `{prefix}`\n\n```\n{parser.format_help().rstrip()}\n```\n"]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += sections(sub, f"{prefix} {name}")
    return out


def main() -> int:
    os.environ["COLUMNS"] = "100"  # the same wrapping on every terminal
    parser = build_parser()
    parser.prog = "facesearch"
    head = (
        "# Command line\n\n"
        "Generated from the parser by `scripts/cli_docs.py` (a test checks it is current).\n"
        "Every command takes `--home`, `--json` and `--debug`. Errors print one line on\n"
        "stderr; exit codes: 0 success, 1 error, 2 bad input or usage, 3 no face in the\n"
        "probe, 4 audit log tampered, 130 interrupted.\n\n"
    )
    sys.stdout.write(head + "\n".join(sections(parser, "facesearch")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

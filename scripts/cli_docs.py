"""Write docs/cli.md from the parser itself, so the CLI help and its docs never drift.

.venv/bin/python scripts/cli_docs.py > docs/cli.md
"""

from __future__ import annotations

import argparse
import os
import sys

from facesearch.cli import CREATES_HOME, build_parser


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
    starters = ", ".join(f"`{c}`" for c in sorted(CREATES_HOME))
    head = (
        "# Command line\n\n"
        "Generated from the parser by `scripts/cli_docs.py` (a test checks it is current).\n"
        "Every command takes `--home`, `--json` and `--debug`; `facesearch --version` prints\n"
        "the version. The home must exist, except for the commands that may start one:\n"
        f"{starters}.\n\n"
        "Errors print one line on stderr. Exit codes:\n\n"
        "| code | meaning |\n"
        "|------|---------|\n"
        "| 0 | success |\n"
        "| 1 | error: a backend or the configuration, a file that cannot be written, a "
        "search refused by the deployment's rules (a blocked jurisdiction), an ingest in "
        "which no file could be ingested |\n"
        "| 2 | bad input or usage: a wrong option, value or file; an id, source or home "
        "that does not exist; a search without the purpose and case reference the "
        "deployment requires; nothing to ingest |\n"
        "| 3 | no face in the probe |\n"
        "| 4 | audit log tampered (`audit verify`) |\n"
        "| 130 | interrupted |\n"
        "| 141 | the output was closed early (`facesearch stats \\| head -3`): stops quietly |\n\n"
    )
    sys.stdout.write(head + "\n".join(sections(parser, "facesearch")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

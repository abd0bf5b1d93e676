"""docs/cli.md is the parser's own help: a changed option without regenerated docs fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cli_docs_are_current() -> None:
    generated = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cli_docs.py")],
        capture_output=True,
        text=True,
        check=True,
        # PYTHONPATH passes through: a worktree's source, not the installed copy, is read
        env={"COLUMNS": "100", "PATH": "", "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    ).stdout
    assert generated == (ROOT / "docs" / "cli.md").read_text(), (
        "docs/cli.md is stale: run `.venv/bin/python scripts/cli_docs.py > docs/cli.md`"
    )

"""Shared fixtures: the real photos in ../shared/data/faces-dev, and engines on temp homes."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT.parent / "shared" / "data" / "faces-dev"

# Real servers the tests start themselves (skipped with a reason when unavailable here).
# One list: a second assignment would silently drop the first plugin's fixtures.
pytest_plugins = ["tests.engines.milvus", "tests.engines.postgres", "tests.engines.ray"]


def dev_data() -> Path:
    """The dev photo set. Missing: skip on a user's clone, fail under CI=true."""
    if not (DEV / "manifest.csv").is_file():
        message = f"the real photos are not at {DEV} (they come with the project's shared data)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return DEV


@pytest.fixture(scope="session")
def dev() -> Path:
    return dev_data()


@pytest.fixture(scope="session")
def manifest(dev: Path) -> list[dict[str, str]]:
    with open(dev / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def register(engine: Any, *names: str, retention_days: int = 3650, **policy: Any) -> None:
    """Register sources for a test, with a lawful basis and a retention period."""
    from facesearch.domain import Source

    for name in names:
        engine.add_source(
            Source(
                name=name,
                lawful_basis=policy.pop("lawful_basis", "legitimate_interests"),
                special_category_condition=policy.pop("special_category_condition", "legal_claims"),
                retention_days=retention_days,
                **policy,
            )
        )


REGISTER_ARGS = [
    "--lawful-basis",
    "legitimate_interests",
    "--condition",
    "legal_claims",
    "--retention",
    "10y",
]


@pytest.fixture
def engine(home: Path) -> Iterator[Any]:
    from facesearch import FaceSearch, Settings

    with FaceSearch(Settings(home=home, workers=1)) as fs:
        yield fs

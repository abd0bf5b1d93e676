"""Every setting is documented: a setting missing from docs/configuration.md fails here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from facesearch.config import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def env_names(model: type[BaseModel], prefix: str = "FACESEARCH_") -> Iterator[str]:
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            yield from env_names(kind, f"{prefix}{name.upper()}__")
        else:
            yield f"{prefix}{name.upper()}"


def test_every_setting_is_in_the_docs() -> None:
    text = DOCS.read_text()
    missing = [name for name in env_names(Settings) if f"`{name}`" not in text]
    assert missing == []


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FACESEARCH_LIMITS__MAX_PIXELS", "1234")
    monkeypatch.setenv("FACESEARCH_GOVERNANCE__BLOCKED_JURISDICTIONS", '["RU"]')
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.limits.max_pixels == 1234
    assert settings.governance.blocked_jurisdictions == ["RU"]


def test_toml_file_is_read_and_bad_values_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "facesearch.toml").write_text("workers = 3\n[search]\ntop_k = 7\n")
    settings = Settings()
    assert (settings.workers, settings.search.top_k) == (3, 7)
    (tmp_path / "facesearch.toml").write_text("[search]\ntop_k = -1\n")
    with pytest.raises(ValidationError):
        Settings()

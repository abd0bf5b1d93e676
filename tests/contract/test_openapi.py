"""The OpenAPI document is valid and the API keeps to it (schemathesis, in-process).

Schemathesis generates requests for every operation from the document and checks each
answer: never a 5xx, a documented status code, the documented content type and headers,
and a body matching the documented schema.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from facesearch import FaceSearch, Settings
from facesearch.accounts.sqlite import SqliteAccountStore
from facesearch.app import create_app
from tests.app_gallery import Gallery, bearer, build_gallery


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, dev: Path, manifest: list[dict[str, str]]
) -> Iterator[tuple[Any, str]]:
    gallery: Gallery = build_gallery(tmp_path_factory.getbasetemp(), dev, manifest)
    # Its own copy of the gallery and its own accounts: generated requests erase images,
    # register sources and make keys, and those stay here.
    own = tmp_path_factory.mktemp("contract")
    shutil.copytree(gallery.home, own / "home")
    store = SqliteAccountStore(own / "accounts.sqlite")
    _, key = store.create_key("schemathesis", "admin")
    settings = Settings(
        home=own / "home",
        workers=1,
        api={"search_rate_per_minute": 60_000, "search_burst": 10_000},
        governance={"retention_interval_minutes": 0},
    )
    with FaceSearch(settings) as fs:
        app = create_app(fs, accounts=store)
        yield app, key
        app.state.gateway.close()
    store.close()


@pytest.fixture(scope="module")
def api_schema(served: tuple[Any, str]) -> Any:
    app, _ = served
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_the_document_is_valid_openapi(api_schema: Any) -> None:
    api_schema.validate()
    raw = api_schema.raw_schema
    assert raw["openapi"].startswith("3.")
    assert raw["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, operations in raw["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, op in operations.items():
            assert op.get("summary") and op.get("security"), (method, path)
            for status in ("401", "403"):
                ref = op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/ErrorOut"), (method, path, status)


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
EXAMPLES = 12  # per operation: the whole run stays well under two minutes


def test_the_api_keeps_to_its_document(api_schema: Any, served: tuple[Any, str]) -> None:
    # Driven by hand rather than through schemathesis's pytest plugin, which does not
    # load under this pytest; the checks and the generation are the same.
    _, key = served
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 28

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            case.call_and_validate(headers=bearer(key), checks=CHECKS)

        try:
            run()
        except Exception as exc:  # a failed check: collect them all, then report
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)

"""One engine used from several threads at once, as the server does next to a caller.

The catalog and the audit log each share one SQLite connection between threads; a
transaction on it must not be ended or rolled back by another thread's write.
"""

from __future__ import annotations

import threading
from pathlib import Path

from facesearch import FaceSearch, Settings
from facesearch.domain import Source


def test_concurrent_writes_from_two_threads_keep_every_entry(tmp_path: Path) -> None:
    rounds = 150
    failures: list[BaseException] = []
    with FaceSearch(Settings(home=tmp_path / "home", workers=1)) as engine:

        def retention() -> None:
            try:
                for _ in range(rounds):
                    engine.run_retention()
            except BaseException as exc:  # collected for the assertion below
                failures.append(exc)

        def sources() -> None:
            try:
                for i in range(rounds):
                    engine.add_source(
                        Source(
                            name=f"source-{i}",
                            lawful_basis="legitimate_interests",
                            special_category_condition="legal_claims",
                            retention_days=30,
                        )
                    )
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=retention), threading.Thread(target=sources)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert failures == []
        assert len(engine.sources()) == rounds
        verification = engine.verify_audit()
        assert verification.ok, verification.problem
        assert verification.entries == 2 * rounds

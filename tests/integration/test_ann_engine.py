"""The approximate index inside the engine: real dlib on real photos, a real SQLite
catalog padded with synthetic faces so that the collection passes a (lowered) threshold.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facesearch import FaceSearch, Settings
from facesearch.cli import main
from facesearch.index.local.rerank import ExactRerankIndex

from ..conftest import register
from ..synthetic import DIM, clustered

THRESHOLD = 5_000


def synthetic(n: int, seed: int) -> np.ndarray:
    return clustered(n, seed, groups=100)


def settings(home: Path) -> Settings:
    return Settings(home=home, workers=1, index={"ann_threshold": THRESHOLD})


def index_bytes(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (home / "index").rglob("*") if p.is_file())


def exact_top(fs: FaceSearch, queries: np.ndarray, k: int, sources: list[str] | None = None):
    allowed = fs.catalog.face_ids(sources) if sources else fs.catalog.face_ids()
    ids, vecs = fs.catalog.embeddings_found(allowed.tolist())
    sims = queries @ vecs.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return ids[order]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


@pytest.fixture(scope="module")
def built(dev: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A home that crossed the threshold: 4,000 synthetic faces, real photos, 2,000 more."""
    home = tmp_path_factory.mktemp("ann") / "home"
    examples = dev / "face_recognition" / "examples"
    kinds = []
    with FaceSearch(settings(home)) as fs:
        register(fs, "archive-a", "archive-b", "news")
        fs.catalog.bulk_add_embeddings("archive-a", synthetic(4_000, 1), prefix="a")
        fs.ingest([examples / "biden.jpg"], source="news")
        kinds.append(fs.index.kind)  # 4,001 faces: still exact
        fs.catalog.bulk_add_embeddings("archive-b", synthetic(2_000, 2), prefix="b")
        fs.ingest([examples / "obama.jpg"], source="news")  # 6,002: the ingest switches
        kinds.append(fs.index.kind)
    return {"home": home, "kinds": kinds, "examples": examples}


@pytest.fixture
def fs(built: dict[str, object], tmp_path: Path) -> Iterator[FaceSearch]:
    """A private copy of the built home (tests may damage it)."""
    home = tmp_path / "home"
    shutil.copytree(built["home"], home)
    with FaceSearch(settings(home)) as engine:
        yield engine


def test_auto_switch_happens_at_the_threshold(built: dict[str, object], fs: FaceSearch) -> None:
    assert built["kinds"] == ["exact", "ann"]
    assert not (fs.home / "index" / "flat").exists(), "the exact index's files are deleted"
    stats = fs.stats()
    assert stats["index"] == {"kind": "ann", "faces": 6_002, "consistent": True}


def test_search_through_ann_reports_exact_similarities(
    built: dict[str, object], fs: FaceSearch
) -> None:
    examples = built["examples"]
    assert isinstance(fs.index.current, ExactRerankIndex)
    probe = fs.probe(examples / "obama2.jpg")
    [result] = fs.search(probe, top_k=5)
    top = result.matches[0]
    assert top.image.path.endswith("obama.jpg") and top.is_match
    stored = fs.catalog.embeddings([top.face_id])[0]
    assert top.similarity == pytest.approx(float(probe.embeddings[0] @ stored), abs=1e-6)


def test_ann_answers_like_exact_search(fs: FaceSearch) -> None:
    rng = np.random.default_rng(7)
    queries = synthetic(4_000, 1)[::40] + 0.02 * rng.standard_normal((100, DIM))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    found, sims = fs.index.search(queries, 10)
    assert recall(found, exact_top(fs, queries, 10)) >= 0.98
    assert sims[:, 0].min() > 0.8, "each query is a new photo of someone stored"
    vecs = fs.catalog.embeddings(found[0].tolist())
    assert np.allclose(sims[0], vecs @ queries[0], atol=1e-6)


def test_source_filters_keep_recall(built: dict[str, object], fs: FaceSearch) -> None:
    examples = built["examples"]
    [news] = fs.search(examples / "obama2.jpg", sources=["news"])
    assert {p.source for m in news.matches for p in m.image.provenance} == {"news"}
    assert news.matches[0].image.path.endswith("obama.jpg")
    [other] = fs.search(examples / "obama2.jpg", sources=["archive-b"])
    assert all(m.image.provenance[0].source == "archive-b" for m in other.matches)
    queries = synthetic(4_000, 1)[::80]
    allowed = fs.catalog.face_ids(["archive-a"])
    found, _ = fs.index.search(queries, 10, allowed)
    assert np.isin(found, allowed).all()
    assert recall(found, exact_top(fs, queries, 10, ["archive-a"])) >= 0.98


def test_erased_face_leaves_results_at_once_and_the_files_after_compact(
    built: dict[str, object], fs: FaceSearch, monkeypatch: pytest.MonkeyPatch
) -> None:
    examples = built["examples"]
    fs.ingest([examples / "obama-480p.jpg"], source="news")  # after the switch: in the delta
    [before] = fs.search(examples / "obama2.jpg", top_k=3)
    [face_id] = [  # (a copy of obama.jpg: it may be folded into that row)
        c.face_id
        for m in before.matches
        for c in (m.copies or [m])
        if c.image.path.endswith("obama-480p.jpg")
    ]
    vector = fs.catalog.embeddings([face_id])[0]
    assert vector.tobytes() in index_bytes(fs.home), "a fresh face waits in the delta file"
    # Erasure (the privacy work's job): catalog rows first, then the index.
    fs.catalog.db.execute("DELETE FROM faces WHERE id = ?", (face_id,))
    assert fs.index.remove([face_id]) == 1
    [after] = fs.search(examples / "obama2.jpg", top_k=3)
    assert face_id not in [m.face_id for m in after.matches]
    assert after.matches[0].image.path.endswith("obama.jpg"), "the others are still found"
    fs.close()
    monkeypatch.setenv("FACESEARCH_INDEX__ANN_THRESHOLD", str(THRESHOLD))
    assert main(["compact", "--home", str(fs.home), "--json"]) == 0
    assert vector.tobytes() not in index_bytes(fs.home)
    assert vector.astype(np.float16).tobytes() not in index_bytes(fs.home)


def test_catalog_deletion_is_repaired_on_open(built: dict[str, object], fs: FaceSearch) -> None:
    """A face erased from the catalog while the index was not told (a crash) is dropped."""
    examples = built["examples"]
    [before] = fs.search(examples / "obama2.jpg", top_k=3)
    image_id = before.matches[0].image.id
    fs.catalog.db.execute("DELETE FROM images WHERE id = ?", (image_id,))
    fs.close()
    with FaceSearch(settings(fs.home)) as again:
        assert again.repaired == {"added": 0, "removed": 1}
        [after] = again.search(examples / "obama2.jpg", top_k=3)
        assert image_id not in [m.image.id for m in after.matches]
        assert again.stats()["index"]["consistent"]


def test_damaged_index_files_are_rebuilt_from_the_catalog(
    built: dict[str, object], fs: FaceSearch
) -> None:
    fs.close()
    for snapshot in (fs.home / "index" / "ivf").glob("ivf.*.faiss"):
        snapshot.write_bytes(b"not a faiss index")
    with FaceSearch(settings(fs.home)) as again:
        assert again.stats()["index"] == {"kind": "ann", "faces": 6_002, "consistent": True}
        [result] = again.search(built["examples"] / "obama2.jpg", top_k=1)
        assert result.matches[0].image.path.endswith("obama.jpg")


def test_reindex_kind_from_the_cli(
    built: dict[str, object],
    fs: FaceSearch,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fs.close()
    monkeypatch.setenv("FACESEARCH_INDEX__ANN_THRESHOLD", str(THRESHOLD))
    home = str(fs.home)
    assert main(["reindex", "--kind", "exact", "--home", home, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"kind": "exact", "faces": 6_002}
    assert not (fs.home / "index" / "ivf").exists()
    with FaceSearch(settings(fs.home)) as again:  # forced: stays exact past the threshold
        assert again.index.kind == "exact"
        [result] = again.search(built["examples"] / "obama2.jpg", top_k=1)
        assert result.matches[0].image.path.endswith("obama.jpg")
    assert main(["reindex", "--kind", "ann", "--home", home, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "ann"
    assert main(["stats", "--home", home, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["index"]["kind"] == "ann"
    with pytest.raises(SystemExit) as exit_info:
        main(["reindex", "--kind", "fast", "--home", home])
    assert exit_info.value.code == 2
    assert "invalid choice: 'fast'" in capsys.readouterr().err


def test_cells_are_retrained_when_the_collection_outgrows_them(tmp_path: Path) -> None:
    home = tmp_path / "home"
    forced = Settings(home=home, workers=1, index={"kind": "ann"})
    with FaceSearch(forced) as fs:
        register(fs, "a")
        fs.catalog.bulk_add_embeddings("a", synthetic(1_000, 3))
    with FaceSearch(forced) as fs:  # built from the catalog, trained for 1,000
        small = fs.index.current.inner
        assert (small.trained, small.trained_for, small.nlist) == (True, 1_000, 32)
        fs.catalog.bulk_add_embeddings("a", synthetic(9_000, 4))
    with FaceSearch(forced) as fs:  # 10,000 faces: more than 8 times as many, retrained
        grown = fs.index.current.inner
        assert (grown.trained_for, grown.nlist) == (10_000, 512)
        assert fs.stats()["index"] == {"kind": "ann", "faces": 10_000, "consistent": True}

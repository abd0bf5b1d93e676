"""One contract for every VectorIndex adapter: answer like exact numpy on the same vectors.

The approximate adapter is held to recall against exact search (its own scores are
estimates); the exact adapters and the re-ranked one must report exact similarities.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facesearch.errors import InvalidInput

from ..synthetic import DIM, clustered
from .adapters import INDEXES, IndexAdapter, IndexOptions, files_bytes, params, rerank_over_ivf

N = 20_000


VECTORS = clustered(N, 1)
IDS = np.arange(1, N + 1, dtype=np.int64) * 3  # not 0..n-1: ids are catalog ids
QUERIES = (
    VECTORS[::400] + 0.02 * np.random.default_rng(2).standard_normal((N // 400, DIM))
).astype(np.float32)
QUERIES /= np.linalg.norm(QUERIES, axis=1, keepdims=True)


def exact(query: np.ndarray, k: int, ids: np.ndarray = IDS, vecs: np.ndarray = VECTORS) -> Any:
    sims = query @ vecs.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return ids[order], np.take_along_axis(sims, order, axis=1)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def catalog_lookup(ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """What the catalog answers: the ids that exist and their float32 embeddings."""
    pos = np.searchsorted(IDS, np.asarray(ids, dtype=np.int64))
    pos = pos[(pos < N) & (IDS[np.minimum(pos, N - 1)] == np.asarray(ids))]
    return IDS[pos], VECTORS[pos]


OPTIONS = IndexOptions(expected=N, lookup=catalog_lookup)


def open_index(adapter: str, directory: Path) -> Any:
    return INDEXES[adapter].open(directory, OPTIONS)


@pytest.fixture(params=params(INDEXES), scope="module")
def adapter(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def built(adapter: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    directory = tmp_path_factory.mktemp(adapter) / "index"
    index = open_index(adapter, directory)
    index.reset("test-model")
    for start in range(0, N, 2_500):  # ingest adds in batches; the IVF trains on the way
        index.add(IDS[start : start + 2_500], VECTORS[start : start + 2_500])
    yield index, directory
    index.close()


def test_answers_like_exact_search(adapter: str, built: tuple[Any, Path]) -> None:
    index, _ = built
    spec: IndexAdapter = INDEXES[adapter]
    exact_sims, required = spec.exact, spec.recall
    found, sims = index.search(QUERIES, 10)
    truth, truth_sims = exact(QUERIES, 10)
    assert recall(found, truth) >= required
    assert (np.diff(sims, axis=1) <= 1e-6).all(), "best first"
    rows = np.searchsorted(IDS, found)
    true_sims = np.einsum("qd,qkd->qk", QUERIES, VECTORS[rows])
    tolerance = 1e-5 if exact_sims else 0.02
    assert np.abs(sims - true_sims).max() <= tolerance
    if exact_sims:
        assert np.allclose(sims[:, 0], truth_sims[:, 0], atol=1e-5)


def test_state_matches_what_was_added(built: tuple[Any, Path]) -> None:
    index, _ = built
    state = index.state()
    assert (state.count, state.id_sum, state.model_key) == (N, int(IDS.sum()), "test-model")
    assert np.array_equal(np.sort(index.ids()), IDS)


def test_filter_keeps_recall_and_never_leaks(adapter: str, built: tuple[Any, Path]) -> None:
    index, _ = built
    required = INDEXES[adapter].recall
    for share in (0.3, 0.02):  # the re-ranked adapter answers the small one exactly
        allowed = IDS[(np.arange(N) // 5) % int(1 / share) == 0]
        found, _ = index.search(QUERIES, 10, allowed)
        assert np.isin(found[found >= 0], allowed).all()
        mask = np.isin(IDS, allowed)
        truth, _ = exact(QUERIES, 10, IDS[mask], VECTORS[mask])
        assert recall(found, truth) >= required - 0.03


def test_a_new_filter_of_the_same_size_is_not_answered_from_the_last(
    built: tuple[Any, Path],
) -> None:
    """The catalog hands the same read-only id array to every search of the same sources
    (the IVF keeps its bitmap for it); another array is another filter, even when it has
    as many ids and the index has not changed."""
    index, _ = built
    halves = []
    for part in (0, 1):
        allowed = IDS[(np.arange(N) // 5) % 2 == part].copy()
        allowed.flags.writeable = False
        halves.append(allowed)
    assert len(halves[0]) == len(halves[1])
    for allowed in (*halves, halves[0], halves[1]):
        found, _ = index.search(QUERIES, 10, allowed)
        assert np.isin(found[found >= 0], allowed).all()
        assert (found >= 0).all()


def test_short_answers_are_padded(built: tuple[Any, Path]) -> None:
    index, _ = built
    found, sims = index.search(QUERIES[:1], 5, IDS[:3])
    assert sorted(found[0, :3].tolist()) == sorted(IDS[:3].tolist())
    assert found[0, 3:].tolist() == [-1, -1] and np.isneginf(sims[0, 3:]).all()


def test_reopens_with_the_same_answers(adapter: str, built: tuple[Any, Path]) -> None:
    index, directory = built
    before = index.search(QUERIES, 10)
    again = open_index(adapter, directory)
    if not INDEXES[adapter].persistent:  # an encrypted home's: no copy of a template on disk
        assert INDEXES[adapter].stored(directory) == b""
        assert again.state().count == 0
        return
    assert again.state() == index.state()
    after = again.search(QUERIES, 10)
    assert np.array_equal(before[0], after[0])


def test_remove_takes_effect_at_once_and_compaction_erases(adapter: str, tmp_path: Path) -> None:
    directory = tmp_path / "index"
    index = open_index(adapter, directory)
    index.reset("test-model")
    index.add(IDS[:17_000], VECTORS[:17_000])  # trained (IVF) snapshot
    index.add(IDS[17_000:], VECTORS[17_000:])  # the rest sits in the delta files
    top, _ = index.search(QUERIES, 1)
    victims = [int(top[0, 0]), int(IDS[-1])]  # one in the snapshot, one in the delta
    codes = ivf_codes(index, victims)
    snapshot_code = ivf_codes(index, victims[:1])  # the delta victim is not coded on disk
    assert index.remove([*victims, 7]) == 2  # 7 was never added: ignored
    found, _ = index.search(np.concatenate([QUERIES, VECTORS[-1:]]), 10)
    assert not np.isin(found, victims).any()
    assert index.state().count == N - 2
    if not INDEXES[adapter].erases_at_once:  # only marked on disk so far: the scan sees them
        before = INDEXES[adapter].stored(directory)
        assert VECTORS[-1].tobytes() in before
        assert snapshot_code and snapshot_code[0] in before
    index.compact()
    spec = INDEXES[adapter]
    deadline = time.monotonic() + spec.erase_delay
    while True:  # a server's garbage collector drops compacted-away files on its own time
        blob = spec.stored(directory)
        left = [
            victim
            for victim in victims
            if VECTORS[np.searchsorted(IDS, victim)].tobytes() in blob
            or VECTORS[np.searchsorted(IDS, victim)].astype(np.float16).tobytes() in blob
        ]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    assert left == []
    for code in codes:
        assert code not in blob
    if INDEXES[adapter].persistent:
        reopened = open_index(adapter, directory)
        assert reopened.state() == index.state()
        assert not np.isin(reopened.search(QUERIES, 10)[0], victims).any()


def test_the_rerank_reads_k_plus_its_margin_from_the_catalog(tmp_path: Path) -> None:
    """Every candidate re-ranked is a catalog read: k + margin of them, not more."""
    asked: list[int] = []

    def counting_lookup(ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        asked.append(len(ids))
        return catalog_lookup(ids)

    options = IndexOptions(expected=N, lookup=counting_lookup)
    index = rerank_over_ivf(tmp_path / "index", options, margin=5)
    index.reset("test-model")
    index.add(IDS, VECTORS)
    found, _ = index.search(QUERIES[:1], 20)
    assert asked == [25]
    truth, _ = exact(QUERIES[:1], 20)
    assert recall(found, truth) >= 0.95


def ivf_codes(index: Any, ids: list[int]) -> list[bytes]:
    """The 8-bit codes the IVF holds for these ids (what erasure must also remove)."""
    import faiss

    inner = getattr(index, "inner", index)
    if getattr(inner, "ivf", None) is None:  # not an IVF, or not trained yet
        return []
    lists = faiss.extract_index_ivf(inner.ivf).invlists
    out = []
    for n in range(lists.nlist):
        size = lists.list_size(n)
        if not size:
            continue
        held = faiss.rev_swig_ptr(lists.get_ids(n), size)
        codes = faiss.rev_swig_ptr(lists.get_codes(n), size * lists.code_size)
        for pos in np.flatnonzero(np.isin(held, ids)):
            out.append(bytes(codes[pos * lists.code_size : (pos + 1) * lists.code_size]))
    return out


# Only the adapters that keep files of their own: an in-memory index has no tail to cut
# off, and a server (Milvus) acknowledges a write only once its log holds it.
@pytest.mark.parametrize(
    "adapter",
    params({k: v for k, v in INDEXES.items() if v.persistent and v.stored is files_bytes}),
    indirect=True,
)
def test_an_unacknowledged_tail_is_cut_off(adapter: str, tmp_path: Path) -> None:
    """A writer that died between appending rows and acknowledging them leaves no trace."""
    directory = tmp_path / "index"
    index = open_index(adapter, directory)
    index.reset("test-model")
    index.add(IDS[:100], VECTORS[:100])
    state = index.state()
    for path in directory.iterdir():
        if path.suffix in (".f32", ".i64") and not path.name.startswith("removed"):
            with open(path, "ab") as fh:  # half-written rows of a crashed add
                fh.write(b"\x01" * 1000)
    reopened = open_index(adapter, directory)
    assert reopened.state() == state
    assert reopened.search(QUERIES[:1], 200)[0][0, 100:].tolist() == [-1] * 100


def test_reset_empties(adapter: str, tmp_path: Path) -> None:
    index = open_index(adapter, tmp_path / "index")
    index.reset("a")
    index.add(IDS[:50], VECTORS[:50])
    index.reset("b")
    assert (index.state().count, index.state().model_key) == (0, "b")
    assert (index.search(QUERIES[:1], 3)[0] == -1).all()


@pytest.mark.parametrize("model_key", ["byo@1/512/cosine", "test-model"])
def test_any_dimension_is_held_and_kept_on_reopening(
    adapter: str, tmp_path: Path, model_key: str
) -> None:
    """A 512-d model's vectors (an operator's own ONNX model), under a key that names the
    dimension or one that does not: no index assumes dlib's 128."""
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((300, 512)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(1, 301, dtype=np.int64)

    def lookup(wanted: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        rows = np.asarray(wanted, dtype=np.int64)
        rows = rows[(rows >= 1) & (rows <= 300)]
        return rows, vectors[rows - 1]

    options = IndexOptions(expected=300, lookup=lookup)
    directory = tmp_path / "index"
    index = INDEXES[adapter].open(directory, options)
    assert (index.search(vectors[:1], 3)[0] == -1).all()  # empty, no dimension yet
    index.reset(model_key)
    index.add(ids, vectors)
    found, sims = index.search(vectors[:5], 1)
    assert found[:, 0].tolist() == ids[:5].tolist()
    assert np.allclose(sims[:, 0], 1.0, atol=0.02)
    if INDEXES[adapter].persistent:
        index = INDEXES[adapter].open(directory, options)
        assert index.search(vectors[7:8], 1)[0][0, 0] == 8
    with pytest.raises(InvalidInput):
        index.add(ids[:1] + 1000, vectors[:1, :128])

"""Grouping faces into persons on seeded vectors with known identities: who is joined,
what is never joined (two faces of one image, two confirmed persons), what sticks."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from facesearch.people.cluster import group_faces


def people(
    n_people: int, per_person: int, spread: float = 0.02, seed: int = 0
) -> tuple[npt.NDArray[np.float32], list[int]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_people, 128))
    rows, labels = [], []
    for p in range(n_people):
        for _ in range(per_person):
            rows.append(centres[p] / np.linalg.norm(centres[p]) + rng.normal(0, spread, 128))
            labels.append(p)
    vectors = np.asarray(rows, dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, labels


def ids(n: int) -> npt.NDArray[np.int64]:
    return np.arange(1, n + 1, dtype=np.int64)


def groups(person_of: dict[int, int]) -> set[frozenset[int]]:
    out: dict[int, set[int]] = {}
    for face, person in person_of.items():
        out.setdefault(person, set()).add(face)
    return {frozenset(v) for v in out.values()}


def test_faces_of_each_identity_form_one_new_person() -> None:
    vectors, labels = people(4, 5)
    faces = ids(20)
    result = group_faces(faces, faces, vectors, {}, {}, threshold=0.8)
    expected = {frozenset(int(faces[i]) for i in range(20) if labels[i] == p) for p in range(4)}
    assert groups(result.person_of) == expected and result.new_persons == 4
    assert all(p < 0 for p in result.person_of.values())


def test_two_faces_of_one_image_are_never_one_person() -> None:
    vectors, _ = people(1, 4, spread=0.01)
    faces = ids(4)
    images = np.array([1, 1, 2, 3], dtype=np.int64)  # faces 1 and 2 share an image
    result = group_faces(faces, images, vectors, {}, {}, threshold=0.5)
    # One of the two joins the others; the other is left alone (a lone face waits).
    assert len(result.person_of) == 3
    assert result.person_of.get(1, -99) != result.person_of.get(2, -98)


def test_a_lone_face_waits_for_a_second_one() -> None:
    vectors, _ = people(2, 1)
    result = group_faces(ids(2), ids(2), vectors, {}, {}, threshold=0.8, min_faces=2)
    assert result.person_of == {}


def test_new_faces_join_existing_persons_and_never_merge_two() -> None:
    vectors, _ = people(2, 3, spread=0.01)
    # Persons 7 (faces 1-3) and 9 (faces 4-6) exist; a new face 7 between them both.
    bridge = vectors[0] + vectors[3]
    new_face = np.vstack([vectors, bridge / np.linalg.norm(bridge), vectors[0]])
    faces = ids(8)
    current = {1: 7, 2: 7, 3: 7, 4: 9, 5: 9, 6: 9}
    result = group_faces(faces, faces, new_face.astype(np.float32), current, {}, threshold=0.5)
    assert result.person_of[8] == 7  # the copy-like face joins person 7
    assert result.person_of[1] == 7 and result.person_of[4] == 9  # never merged
    assert result.new_persons == 0


def test_a_confirmed_split_sticks_through_a_full_run() -> None:
    vectors, _ = people(1, 6, spread=0.01)  # one tight group, split by a person
    faces = ids(6)
    confirmed = {1: 5, 2: 5, 4: 6, 5: 6}
    result = group_faces(faces, faces, vectors, confirmed, confirmed, threshold=0.5, full=True)
    assert {result.person_of[f] for f in (1, 2)} == {5}
    assert {result.person_of[f] for f in (4, 5)} == {6}
    assert result.person_of[3] in (5, 6) and result.person_of[6] in (5, 6)


def test_a_full_run_keeps_the_ids_of_the_persons_it_keeps() -> None:
    vectors, labels = people(2, 4)
    faces = ids(8)
    current = {int(faces[i]): 100 + labels[i] for i in range(8)}
    result = group_faces(faces, faces, vectors, current, {}, threshold=0.8, full=True)
    assert result.person_of == current and result.new_persons == 0


def test_incremental_step_gives_the_answer_of_a_run_over_every_face() -> None:
    """``group_new_faces`` asks only the new faces' neighbours (here from an exact index,
    as the engine's is) and must place them as ``group_faces`` does over every face: the
    same persons joined, the same new persons, the one-image rule kept across the seam."""
    import faiss

    from facesearch.people.cluster import group_new_faces

    # Look-alikes (wide spread) so that the threshold and the image rule decide.
    vectors, labels = people(60, 6, spread=0.04, seed=3)
    alone, _ = people(30, 1, spread=0.04, seed=4)  # one photo each: they stay ungrouped
    newcomers, _ = people(5, 4, spread=0.04, seed=6)  # first seen in the later batch
    vectors = np.concatenate([vectors, alone, newcomers])
    labels = labels + [100 + i for i in range(30)] + [200 + i // 4 for i in range(20)]
    n = len(labels)
    faces = ids(n)
    rng = np.random.default_rng(5)
    images = faces.copy()
    # Some images show two faces (of different identities): they must never be one person.
    for a in rng.choice(n, 40, replace=False).tolist():
        b = int(rng.integers(n))
        if labels[a] != labels[b]:
            images[b] = images[a]
    arrived = rng.permutation(n - 20)
    first, later = np.sort(arrived[: n * 4 // 5]), np.sort(arrived[n * 4 // 5 :])
    # Across the seam: a later face shares an image with an earlier face of its own
    # identity (a twin, a reflection), so it must not join that person.
    early = set(first.tolist())
    for b in later.tolist()[:30]:
        twin = next((a for a in early if labels[a] == labels[b]), None)
        if twin is not None:
            images[b] = images[twin]
    kw = {"threshold": 0.8, "k": 6, "min_faces": 3}
    before = group_faces(faces[first], images[first], vectors[first], {}, {}, **kw)
    current = {f: p + 1000 for f, p in before.person_of.items()}  # stored ids are positive
    assert len(set(current.values())) > 20  # the grouping is not trivial

    expected = group_faces(faces, images, vectors, current, {}, **kw)
    index = faiss.IndexIDMap(faiss.IndexFlatIP(vectors.shape[1]))
    index.add_with_ids(vectors, faces)

    def nearest(
        q: npt.NDArray[np.float32], k: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        sims, found = index.search(q, k)
        return found.astype(np.int64), sims

    fresh = np.array([f for f in faces.tolist() if f not in current], dtype=np.int64)
    assert len(fresh) > len(later)  # leftovers of the first run (too few faces) come back
    got = group_new_faces(
        fresh,
        images[fresh - 1],
        vectors[fresh - 1],
        current,
        nearest,
        lambda fs: {int(f): int(images[int(f) - 1]) for f in fs},
        **kw,
    )
    want = {f: p for f, p in expected.person_of.items() if f not in current}
    assert expected.new_persons >= 5 and any(p > 0 for p in want.values())
    assert got.person_of == want
    assert got.new_persons == expected.new_persons
    # And nobody grouped shows twice in one image.
    every = {**current, **got.person_of}
    seen = {(images[f - 1], p) for f, p in every.items()}
    assert len(seen) == len(every)

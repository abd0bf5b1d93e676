"""Grouping faces into persons: a graph over each face's nearest neighbours, joined
strongest edge first (single linkage under constraints), with what people decided kept.

Why this algorithm (bench/people_cluster.py measured it against HDBSCAN-style density
clustering's needs): it is incremental for free (a new face only adds its own edges), it
takes the constraints as it goes (two faces of one image are never joined, a person
someone confirmed is never joined to another), and at a fixed ``k`` it costs one k-NN
search per face: faiss (exact up to ``EXACT_UP_TO`` faces, an inverted file beyond) and
one sort of the edges. Incrementally (``group_new_faces``) only the new faces are
searched, in the engine's own index: the cost follows the new faces, not the collection.

Rules:
- a face someone confirmed (named into a person by a merge, a split or an assignment)
  stays in that person, in every later run;
- a component holding confirmed faces of two persons is never formed (the edge that would
  join them is dropped), so a split sticks;
- incrementally (``full=False``) every grouped face keeps its person, new faces join one
  or start one, and two existing persons are never joined by the machine (a merge is a
  person's decision); a full run regroups every unconfirmed face, keeping the ids (and
  names) of the persons whose faces it keeps most of;
- a new person needs ``min_faces`` faces; fewer stay ungrouped until more arrive.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import faiss
import numpy as np
import numpy.typing as npt

EXACT_UP_TO = 200_000
# Beyond EXACT_UP_TO faces a full run's k-NN graph comes from an inverted-file index:
# about IVF_LIST_SIZE faces per list, IVF_PROBE lists searched per face (the recall of
# the graph against the exact one is measured in bench/people_cluster.py).
IVF_LIST_SIZE = 256
IVF_PROBE = 16

# (query vectors, k) -> the k nearest faces' ids (-1 pads) and similarities, best first:
# the engine's vector index, restricted to the faces being grouped.
Nearest = Callable[
    [npt.NDArray[np.float32], int], tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]
]
# face ids -> their image ids.
ImagesOf = Callable[[Sequence[int]], Mapping[int, int]]


@dataclass(frozen=True, slots=True)
class Grouping:
    """The outcome: each grouped face's person (an existing id, or a negative number
    for the n-th new person: -1, -2, ...), and the faces left ungrouped."""

    person_of: dict[int, int]
    new_persons: int
    edges: int
    knn_seconds: float = 0.0  # of the time, finding the neighbours (for the bench)


def knn_index(vectors: npt.NDArray[np.float32]) -> faiss.Index:
    """An index over ``vectors`` (inner product): exact up to ``EXACT_UP_TO`` rows, an
    inverted file (``IVF_LIST_SIZE`` rows a list, ``IVF_PROBE`` lists searched) beyond."""
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = data.shape[1]
    if len(data) <= EXACT_UP_TO:
        index: faiss.Index = faiss.IndexFlatIP(dim)
    else:
        lists = max(1, len(data) // IVF_LIST_SIZE)
        quantizer = faiss.IndexFlatIP(dim)
        ivf = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(0).choice(len(data), min(len(data), 40 * lists), False)
        ivf.train(data[np.sort(sample)])
        ivf.nprobe = IVF_PROBE
        index = ivf
    index.add(data)
    return index


def neighbours(
    vectors: npt.NDArray[np.float32], queries: npt.NDArray[np.int64], k: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """The ``k`` nearest rows (inner product of unit vectors) of each row in ``queries``."""
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    index = knn_index(data)
    k = min(k + 1, len(data))
    sims, rows = index.search(np.ascontiguousarray(data[queries]), k)
    return sims, rows


def group_faces(
    face_ids: npt.NDArray[np.int64],
    image_ids: npt.NDArray[np.int64],
    vectors: npt.NDArray[np.float32],
    current: Mapping[int, int],
    confirmed: Mapping[int, int],
    *,
    threshold: float,
    k: int = 10,
    min_faces: int = 2,
    full: bool = False,
) -> Grouping:
    """Group ``face_ids`` (of ``image_ids``, with unit ``vectors``, row by row).

    ``current`` maps grouped faces to their persons, ``confirmed`` the faces people
    placed; ``threshold`` is the similarity an edge needs (higher: fewer wrong merges,
    more persons split in two).
    """
    n = len(face_ids)
    if n == 0:
        return Grouping({}, 0, 0)
    row_of = {int(f): i for i, f in enumerate(face_ids)}
    parent = np.arange(n, dtype=np.int64)
    images: dict[int, set[int]] = {i: {int(image_ids[i])} for i in range(n)}
    anchor: dict[int, int] = {}  # root -> the person it may not be joined away from
    seeds = {f: p for f, p in current.items() if f in row_of}
    if full:
        seeds = {f: p for f, p in confirmed.items() if f in row_of}
    first_row: dict[int, int] = {}
    for face, person in sorted(seeds.items()):
        i = row_of[face]
        if person in first_row:
            _union(first_row[person], i, parent, images, anchor)
        else:
            first_row[person] = i
            anchor[i] = person
    # The query side: every face in a full run, only the ungrouped ones otherwise.
    queries = np.arange(n) if full else np.array([row_of[f] for f in row_of if f not in seeds])
    started = time.perf_counter()
    edges = _edges(vectors, queries.astype(np.int64), k, threshold)
    knn_seconds = time.perf_counter() - started
    for a, b in edges:
        ra, rb = _root(parent, a), _root(parent, b)
        if ra == rb or not images[ra].isdisjoint(images[rb]):
            continue
        if ra in anchor and rb in anchor:
            continue
        _union(ra, rb, parent, images, anchor)
    result = _name(face_ids, current, parent, anchor, min_faces, full, len(edges))
    return replace(result, knn_seconds=knn_seconds)


def group_new_faces(
    new_ids: npt.NDArray[np.int64],
    new_images: npt.NDArray[np.int64],
    new_vectors: npt.NDArray[np.float32],
    current: Mapping[int, int],
    nearest: Nearest,
    images_of: ImagesOf,
    *,
    threshold: float,
    k: int = 10,
    min_faces: int = 2,
) -> Grouping:
    """The incremental step of ``group_faces`` (``full=False``) at the cost of the new
    faces, not of every grouped one: ``nearest`` (the engine's vector index over the
    faces being grouped, grouped and new) answers the ``k`` neighbours of each new face,
    each person met stands as one node (images: those of its faces, from ``images_of``),
    and the joining follows the same rules. Returns the new faces' persons only.

    With an exact ``nearest`` the answer is ``group_faces``'s on every face (ties aside).
    """
    q = len(new_ids)
    if q == 0:
        return Grouping({}, 0, 0)
    started = time.perf_counter()
    found, sims = nearest(np.ascontiguousarray(new_vectors, dtype=np.float32), k + 1)
    knn_seconds = time.perf_counter() - started
    src = np.repeat(np.arange(q, dtype=np.int64), found.shape[1])
    dst, sim = found.ravel().astype(np.int64), sims.ravel()
    keep = (dst >= 0) & (dst != new_ids[src]) & (sim >= threshold)
    src, dst, sim = src[keep], dst[keep], sim[keep]
    order = np.argsort(-sim, kind="stable")
    src, dst = src[order], dst[order]
    row_of = {int(f): i for i, f in enumerate(new_ids.tolist())}
    node_of_person: dict[int, int] = {}
    edges: list[tuple[int, int]] = []
    for a, face in zip(src.tolist(), dst.tolist(), strict=True):
        if face in row_of:
            edges.append((a, row_of[face]))
        elif face in current:
            person = current[face]
            node = node_of_person.setdefault(person, q + len(node_of_person))
            edges.append((a, node))
    persons = list(node_of_person)
    members: dict[int, list[int]] = {p: [] for p in persons}
    for face, person in current.items():
        if person in members:
            members[person].append(face)
    image_of = images_of([f for p in persons for f in members[p]]) if persons else {}
    n = q + len(persons)
    parent = np.arange(n, dtype=np.int64)
    images: dict[int, set[int]] = {i: {int(new_images[i])} for i in range(q)}
    anchor: dict[int, int] = {}
    for person, node in node_of_person.items():
        images[node] = {int(image_of[f]) for f in members[person] if f in image_of}
        anchor[node] = person
    for a, b in edges:
        ra, rb = _root(parent, a), _root(parent, b)
        if ra == rb or not images[ra].isdisjoint(images[rb]):
            continue
        if ra in anchor and rb in anchor:
            continue
        _union(ra, rb, parent, images, anchor)
    # Name as group_faces does: only the new faces' components matter (a person's node
    # stands for faces that keep their person).
    nodes = np.concatenate([new_ids, np.full(len(persons), -1, dtype=np.int64)])
    result = _name(nodes, {}, parent, anchor, min_faces, False, len(edges))
    person_of = {f: p for f, p in result.person_of.items() if f >= 0}
    return Grouping(person_of, result.new_persons, len(edges), knn_seconds)


def _edges(
    vectors: npt.NDArray[np.float32], queries: npt.NDArray[np.int64], k: int, threshold: float
) -> list[tuple[int, int]]:
    if len(queries) == 0 or len(vectors) < 2:
        return []
    sims, rows = neighbours(vectors, queries, k)
    src = np.repeat(queries, rows.shape[1])
    dst = rows.ravel()
    sim = sims.ravel()
    keep = (dst >= 0) & (dst != src) & (sim >= threshold)
    src, dst, sim = src[keep], dst[keep], sim[keep]
    order = np.argsort(-sim, kind="stable")
    return list(zip(src[order].tolist(), dst[order].tolist(), strict=True))


def _union(
    a: int,
    b: int,
    parent: npt.NDArray[np.int64],
    images: dict[int, set[int]],
    anchor: dict[int, int],
) -> None:
    ra, rb = _root(parent, a), _root(parent, b)
    if ra == rb:
        return
    if len(images[ra]) < len(images[rb]):
        ra, rb = rb, ra
    parent[rb] = ra
    images[ra] |= images.pop(rb)
    if rb in anchor:
        anchor.setdefault(ra, anchor.pop(rb))


def _root(parent: npt.NDArray[np.int64], i: int) -> int:
    root = i
    while parent[root] != root:
        root = int(parent[root])
    while parent[i] != root:  # path compression: later finds are one step
        parent[i], i = root, int(parent[i])
    return root


def _name(
    face_ids: npt.NDArray[np.int64],
    current: Mapping[int, int],
    parent: npt.NDArray[np.int64],
    anchor: dict[int, int],
    min_faces: int,
    full: bool,
    n_edges: int,
) -> Grouping:
    members: dict[int, list[int]] = {}
    for i, face in enumerate(face_ids.tolist()):
        members.setdefault(_root(parent, i), []).append(face)
    person_of: dict[int, int] = {}
    taken = set(anchor.values())
    new = 0
    # Largest first: when two components claim one old person, the larger keeps it.
    for root, faces in sorted(members.items(), key=lambda kv: (-len(kv[1]), kv[1][0])):
        person = anchor.get(root)
        if person is None and full:
            previous = Counter(current[f] for f in faces if f in current)
            for candidate, _ in previous.most_common():
                if candidate not in taken:
                    person = candidate
                    break
        if person is None:
            if len(faces) < min_faces:
                continue
            new += 1
            person = -new
        taken.add(person)
        for face in faces:
            person_of[face] = person
    return Grouping(person_of, new, n_edges)

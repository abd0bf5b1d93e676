"""People: the faces of sources whose policy declares grouping (``group_people``), grouped
into persons (``people.cluster``), corrected by people (rename, merge, split), searched
with, and the start of an erasure review or an access request.

Grouping is profiling, so it is a declared purpose: only faces with a copy in a source
that declares it are grouped, a face whose sources stop declaring it leaves its person
at the next run (the facade runs one when a source's policy changes), and every run and
every correction is audited.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from facesearch.domain import (
    BoundingBox,
    ErasureReviewed,
    Match,
    PeopleGrouped,
    Person,
    PersonEdited,
    PersonSearched,
    ProbeFace,
    Requester,
    SearchEvent,
    SearchResult,
)
from facesearch.engine.home import Home
from facesearch.engine.search import Searcher
from facesearch.errors import InvalidInput, NotFound
from facesearch.governance.access import access_report
from facesearch.index.ports import FaceFilter
from facesearch.people.cluster import group_faces, group_new_faces

# "Search with this person" uses at most this many of their faces as probes (the
# confirmed ones first): enough to cover poses and ages, bounded in cost.
MAX_PROBES = 32


class People:
    def __init__(self, parts: Home, searcher: Searcher) -> None:
        self.parts = parts
        self.searcher = searcher

    def grouping_sources(self) -> list[str]:
        return [s.name for s in self.parts.catalog.list_sources(counts=False) if s.group_people]

    # -- grouping ------------------------------------------------------------------------
    def group(self, full: bool = False, who: Requester | None = None) -> dict[str, Any]:
        """Group the faces of the declaring sources: new faces only, or (``full``) every
        face not confirmed by a person. Faces whose sources no longer declare grouping
        leave their persons. Audited as ``people.group``."""
        catalog, settings = self.parts.catalog, self.parts.settings.people
        sources = self.grouping_sources()
        current, confirmed = catalog.person_assignments()
        ids = catalog.face_ids(sources) if sources else np.empty(0, dtype=np.int64)
        allowed = {int(i) for i in ids}
        ungroup = sorted(f for f in current if f not in allowed)
        if not full and len(ids) and all(int(i) in current for i in ids) and not ungroup:
            return {"sources": sources, "faces": len(ids), "grouped": 0, "new_persons": 0,
                    "ungrouped": 0, "full": False}  # fmt: skip
        person_of: dict[int, int] = {}
        new = 0
        if len(ids) and not full:
            # The cost of the new (and still ungrouped) faces only: their neighbours come
            # from the engine's index, restricted to the declaring sources' faces.
            grouped = {f: p for f, p in current.items() if f in allowed}
            fresh = np.array([i for i in ids.tolist() if i not in grouped], dtype=np.int64)
            to_image = catalog.faces_to_images(fresh.tolist())
            where = FaceFilter(sources=tuple(sources))

            def nearest(
                queries: npt.NDArray[np.float32], k: int
            ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
                found, sims = self.parts.index.search(queries, k, where=where)
                return np.asarray(found, dtype=np.int64), np.asarray(sims, dtype=np.float32)

            result = group_new_faces(
                fresh,
                np.array([to_image[int(i)] for i in fresh], dtype=np.int64),
                catalog.embeddings(fresh.tolist()),
                grouped,
                nearest,
                catalog.faces_to_images,
                threshold=settings.threshold,
                k=settings.neighbours,
                min_faces=settings.min_faces,
            )
            person_of, new = result.person_of, result.new_persons
        elif len(ids):
            to_image = catalog.faces_to_images(ids.tolist())
            images = np.array([to_image[int(i)] for i in ids], dtype=np.int64)
            vectors = catalog.embeddings(ids.tolist())
            result = group_faces(
                ids,
                images,
                vectors,
                {f: p for f, p in current.items() if f in allowed},
                {f: p for f, p in confirmed.items() if f in allowed},
                threshold=settings.threshold,
                k=settings.neighbours,
                min_faces=settings.min_faces,
                full=full,
            )
            person_of, new = result.person_of, result.new_persons
        changed = {f: p for f, p in person_of.items() if current.get(f) != p}
        dropped = ungroup + (
            [f for f in current if f in allowed and f not in person_of] if full else []
        )
        catalog.write_grouping(changed, dropped)
        summary: dict[str, Any] = {
            "sources": sources,
            "faces": len(ids),
            "grouped": len(changed),
            "new_persons": new,
            "ungrouped": len(dropped),
            "full": full,
        }
        self.parts.record(PeopleGrouped(**summary), who)
        return summary

    # -- reads ---------------------------------------------------------------------------
    def persons(self) -> list[Person]:
        return self.parts.catalog.persons()

    def person(self, person_id: int) -> Person:
        found = self.parts.catalog.persons([person_id])
        if not found:
            raise NotFound(f"no person with id {person_id}")
        return found[0]

    # -- corrections ---------------------------------------------------------------------
    def rename(self, person_id: int, name: str, who: Requester | None = None) -> Person:
        name = " ".join(name.split())
        if len(name) > 200:
            raise InvalidInput("a person's name is at most 200 characters")
        self.parts.catalog.rename_person(person_id, name)
        self._edited(person_id, "rename", [], [], who)
        return self.person(person_id)

    def merge(self, into: int, others: Sequence[int], who: Requester | None = None) -> Person:
        """Move every face of ``others`` into ``into``, confirmed: a later run keeps them."""
        others = sorted({int(o) for o in others} - {into})
        if not others:
            raise InvalidInput("name at least one other person to merge")
        target = self.person(into)
        moved = [f for o in others for f in self.person(o).faces]
        clash = self._shared_images(target.faces, moved)
        if clash:
            raise InvalidInput(
                f"persons {into} and {', '.join(map(str, others))} both appear in image(s) "
                f"{', '.join(map(str, clash[:5]))}: one image never shows one person twice"
            )
        self.parts.catalog.place_faces(list(target.faces) + moved, into)
        self._edited(into, "merge", moved, others, who)
        return self.person(into)

    def split(
        self, person_id: int, face_ids: Sequence[int], who: Requester | None = None
    ) -> tuple[Person, Person]:
        """Move ``face_ids`` out of the person into a new one. Both sides are confirmed,
        so later runs never join them again."""
        person = self.person(person_id)
        moving = sorted({int(f) for f in face_ids})
        if not moving or not set(moving) <= set(person.faces):
            raise InvalidInput(f"name faces of person {person_id} to split off")
        staying = [f for f in person.faces if f not in set(moving)]
        if not staying:
            raise InvalidInput("a split leaves at least one face with the person")
        catalog = self.parts.catalog
        catalog.place_faces(staying, person_id)
        new_id = catalog.place_faces(moving, None)
        self._edited(person_id, "split", moving, [new_id], who)
        return self.person(person_id), self.person(new_id)

    def move(
        self, face_ids: Sequence[int], person_id: int | None, who: Requester | None = None
    ) -> Person:
        """Put faces (grouped or not, of declaring sources) into a person, or a new one
        (None), confirmed: e.g. more reference photos of someone already known."""
        faces = sorted({int(f) for f in face_ids})
        allowed = set(self.parts.catalog.face_ids(self.grouping_sources()).tolist())
        outside = [f for f in faces if f not in allowed]
        if not faces or outside:
            raise InvalidInput(
                f"face(s) {', '.join(map(str, outside[:5])) or '(none)'} are not faces of a "
                "source that declares grouping"
            )
        if person_id is not None:
            target = self.person(person_id)
            clash = self._shared_images([f for f in target.faces if f not in faces], faces)
            if clash:
                raise InvalidInput(
                    f"person {person_id} is already in image(s) "
                    f"{', '.join(map(str, clash[:5]))}: one image never shows one person twice"
                )
        placed = self.parts.catalog.place_faces(faces, person_id)
        self._edited(placed, "move", faces, [], who)
        return self.person(placed)

    def _shared_images(self, a: Sequence[int], b: Sequence[int]) -> list[int]:
        to_image = self.parts.catalog.faces_to_images([*a, *b])
        return sorted({to_image[f] for f in a} & {to_image[f] for f in b})

    def _edited(
        self, person: int, change: str, faces: list[int], merged: list[int], who: Requester | None
    ) -> None:
        event = PersonEdited(person=person, change=change, faces=faces, merged=merged)
        self.parts.record(event, who)

    # -- search, review, access ----------------------------------------------------------
    def search(
        self,
        person_id: int,
        *,
        top_k: int | None = None,
        threshold: float | None = None,
        sources: Sequence[str] | None = None,
        who: Requester | None = None,
    ) -> SearchResult:
        """Search with the person's faces as probes; each image keeps its best
        similarity to any of them. Audited once, as ``search.person``."""
        person = self.person(person_id)
        k = top_k if top_k is not None else self.parts.settings.search.top_k
        cut = self.parts.settings.search.threshold if threshold is None else threshold
        result = self._multi(person, k, cut, sources, include_suppressed=False, who=who)
        self._audit(PersonSearched, person, result, sources, k, cut, who)
        return result

    def review(self, person_id: int, who: Requester | None = None) -> SearchResult:
        """Every image an erasure of the person would take, for review: the person's own
        images, and every image above the strict threshold of any of their faces (in
        any source, objections included). Audited as ``erasure.review``."""
        person = self.person(person_id)
        strict = self.parts.settings.governance.strict_threshold
        result = self._multi(person, 1000, strict, None, include_suppressed=True, who=who)
        own = set(person.images)
        kept = tuple(m for m in result.matches if m.is_match or m.image.id in own)
        result = replace(result, matches=kept)
        self._audit(ErasureReviewed, person, result, None, 1000, strict, who)
        return result

    def access_request(self, person_id: int, who: Requester | None = None) -> dict[str, Any]:
        """The access report of a data subject, started from their person: what the
        erasure review finds, in the report an access request by photo gives."""
        result = self.review(person_id, who)
        sources = {s.name: s for s in self.parts.catalog.list_sources(counts=True)}
        strict = self.parts.settings.governance.strict_threshold
        report = access_report(result, sources, strict, uuid.uuid4().hex[:12])
        report["person"] = person_id
        return report

    def _multi(
        self,
        person: Person,
        k: int,
        cut: float,
        sources: Sequence[str] | None,
        *,
        include_suppressed: bool,
        who: Requester | None,
    ) -> SearchResult:
        probes = [*person.confirmed, *(f for f in person.faces if f not in person.confirmed)]
        probes = probes[:MAX_PROBES]
        vectors = self.parts.catalog.embeddings(probes)
        best: dict[int, Match] = {}
        for vector in vectors:
            found = self.searcher.search_vectors(
                vector[None, :],
                probe_face=_stored_probe(0),
                top_k=k,
                threshold=cut,
                sources=sources,
                who=who,
                audit=None,
                include_suppressed=include_suppressed,
            )
            for m in found.matches:
                if m.image.id not in best or m.similarity > best[m.image.id].similarity:
                    best[m.image.id] = m
        # The person's own images come first among equals: they are why it was asked.
        ranked = sorted(best.values(), key=lambda m: -m.similarity)[:k]
        matches = tuple(replace(m, rank=n) for n, m in enumerate(ranked, start=1))
        return SearchResult(
            probe_face=_stored_probe(0), threshold=cut, matches=matches, model=self.parts.model
        )

    def _audit(
        self,
        kind: type[SearchEvent],
        person: Person,
        result: SearchResult,
        sources: Sequence[str] | None,
        k: int,
        cut: float,
        who: Requester | None,
    ) -> None:
        common: dict[str, Any] = {
            "probe_sha256": None,
            "sources": list(sources or []),
            "top_k": k,
            "threshold": cut,
            "results": len(result.matches),
            "likely_matches": sum(m.is_match for m in result.matches),
        }
        if kind is PersonSearched:
            common |= {"person": person.id, "probes": min(len(person.faces), MAX_PROBES)}
        self.parts.record(kind(**common), who)


def _stored_probe(index: int) -> ProbeFace:
    """A probe that is a stored face, not an uploaded photo: it has no box of its own."""
    return ProbeFace(index=index, box=BoundingBox(0, 0, 0, 0), score=0.0, size=0)

"""People on real photos: grouping is off until a source's policy declares it, groups the
dev set's labelled people without mixing them, never puts two faces of one photo in one
person, keeps people's corrections through a full regrouping, searches with a person,
and starts an erasure review and an access request from one; the CLI drives it too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from facesearch import FaceSearch, Settings
from facesearch.cli.main import main
from facesearch.errors import InvalidInput

from ..conftest import register
from ..engines import postgres as pg

PEOPLE = ("Justin_Leonard", "Marc_Grossman", "Martha_Burk", "Mary_Carey")
EXAMPLES = "face_recognition/examples"
TWO_PEOPLE = "face_recognition/examples/knn_examples/test/obama_and_biden.jpg"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def people_home(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, dev: Path
) -> Iterator[FaceSearch]:
    """The same scenarios on the embedded catalog and on a PostgreSQL one."""
    home = tmp_path_factory.mktemp("people") / "home"
    catalog = {"url": pg.database("people")} if request.param == "postgres" else {}
    with FaceSearch(Settings(home=home, workers=1, catalog=catalog)) as engine:  # type: ignore[arg-type]
        register(engine, "album", "press")
        album = [dev / f"lfw/{p}/{p}_000{n}.jpg" for p in PEOPLE for n in (1, 2, 3)]
        album += [dev / EXAMPLES / "obama.jpg", dev / EXAMPLES / "biden.jpg", dev / TWO_PEOPLE]
        engine.ingest(album, source="album")
        engine.ingest([dev / f"lfw/{p}/{p}_0004.jpg" for p in PEOPLE], source="press")
        yield engine


def label(engine: FaceSearch, image_id: int) -> str:
    path = engine.show(image_id).path
    return "obama_and_biden" if "obama_and_biden" in path else Path(path).parent.name


def face_label(engine: FaceSearch, face_id: int) -> str:
    """Whom a face shows: an LFW photo's label names its main (largest) face only; the
    detector also finds people at its edges, who are someone else ("background")."""
    image = engine.show(engine.catalog.faces_to_images([face_id])[face_id])
    main_face = image.faces[0].id  # faces are kept largest first
    if "obama_and_biden" in image.path:
        return "obama_and_biden"
    return Path(image.path).parent.name if face_id == main_face else "background"


def identities(engine: FaceSearch) -> list[set[str]]:
    return [{face_label(engine, f) for f in p.faces} for p in engine.persons()]


def two_people(engine: FaceSearch) -> list[int]:
    """The faces of Obama and Biden in the photo of both (its two largest faces)."""
    [photo] = [
        i for i in engine.list_images(source="album", limit=100) if "obama_and_biden" in i.path
    ]
    return [f.id for f in photo.faces[:2]]


def test_grouping_is_a_declared_purpose_and_groups_without_mixing(
    people_home: FaceSearch,
) -> None:
    engine = people_home
    assert engine.persons() == []  # no source declares it: nothing is grouped
    engine.update_source("album", group_people=True)  # declaring it groups at once
    persons = engine.persons()
    groups = identities(engine)
    # Every person holds one labelled identity (the two-person photo aside), and each
    # LFW person's three album photos are one person.
    for names in groups:
        assert len(names - {"obama_and_biden", "examples", "background"}) <= 1
    for p in PEOPLE:
        assert {p} in groups
    # No face of the press source, which declares nothing, is in a person.
    press = set(engine.catalog.face_ids(["press"]).tolist())
    assert not any(press & set(p.faces) for p in persons)
    # The two faces of one photo are never one person.
    two = set(two_people(engine))
    for p in persons:
        assert len(two & set(p.faces)) <= 1
    entries = engine.read_audit(action="people.group")
    assert entries and entries[-1].details["sources"] == ["album"]
    report = engine.transparency_report()
    assert [s["group_people"] for s in report["sources"]] == [True, False]
    assert report["persons"] == len(persons)


def test_corrections_stick_through_a_full_regrouping(people_home: FaceSearch) -> None:
    engine = people_home
    by_name = {
        name: p
        for names, p in zip(identities(engine), engine.persons(), strict=True)
        for name in names
        if name in PEOPLE
    }
    justin, marc = by_name["Justin_Leonard"], by_name["Marc_Grossman"]
    engine.rename_person(justin.id, "Witness J")
    merged = engine.merge_persons(justin.id, [marc.id])
    assert set(merged.faces) == set(justin.faces) | set(marc.faces)
    assert merged.name == "Witness J"
    _, split = engine.split_person(justin.id, marc.faces)
    engine.group_people(full=True)
    after = {p.id: p for p in engine.persons()}
    assert after[justin.id].name == "Witness J"
    assert set(after[justin.id].faces) == set(justin.faces)
    assert set(after[split.id].faces) == set(marc.faces)
    grouped = {f for p in engine.persons() for f in p.faces}
    [first, second] = two_people(engine)
    # By hand too, one photo's two faces never go into one person.
    one = engine.move_faces([first], None) if first not in grouped else None
    owner = next(p.id for p in engine.persons() if first in p.faces)
    with pytest.raises(InvalidInput, match="one image never shows one person twice"):
        engine.move_faces([second], owner)
    other = engine.move_faces([second], None) if second not in grouped else None
    owners = [p.id for p in engine.persons() if {first, second} & set(p.faces)]
    with pytest.raises(InvalidInput, match="one image never shows one person twice"):
        engine.merge_persons(owners[0], owners[1:])
    assert one is None or other is None or one.id != other.id


def test_search_with_a_person_finds_their_photo_in_another_source(
    people_home: FaceSearch, dev: Path
) -> None:
    engine = people_home
    [mary] = [
        p for p, n in zip(engine.persons(), identities(engine), strict=True) if n == {"Mary_Carey"}
    ]
    result = engine.search_person(mary.id, top_k=10)
    best = result.matches[0]
    assert best.is_match and label(engine, best.image.id) == "Mary_Carey"
    found = {label(engine, m.image.id) for m in result.matches if m.is_match}
    assert found == {"Mary_Carey"}
    press = [m for m in result.matches if m.image.provenance[0].source == "press"]
    assert press and press[0].is_match  # the photo of her the album does not hold
    assert engine.read_audit(action="search.person")[-1].details["person"] == mary.id

    review = engine.review_person(mary.id)
    assert {m.image.id for m in review.matches} >= set(mary.images)
    report = engine.access_request_person(mary.id)
    assert report["images_found"] == len(review.matches) and report["person"] == mary.id
    receipt = engine.erase(image_ids=[m.image.id for m in review.matches], reason="request 9")
    assert receipt.images_removed == len(review.matches)
    assert mary.id not in {p.id for p in engine.persons()}  # no name outlives its faces


def test_the_cli_lists_names_and_withdrawing_the_purpose_ungroups(
    people_home: FaceSearch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = ["--home", str(people_home.home)]
    url = people_home.parts.settings.catalog.url
    home += ["--catalog", url] if url else []
    people_home.close()
    assert main(["people", "list", "--json", *home]) == 0
    persons = json.loads(capsys.readouterr().out)
    first = persons[0]["id"]
    assert main(["people", "name", str(first), "Person of interest", *home]) == 0
    assert "Person of interest" in capsys.readouterr().out
    assert main(["people", "show", "999999", *home]) == 2
    assert "no person with id 999999" in capsys.readouterr().err
    assert main(["sources", "update", "album", "--no-group-people", *home]) == 0
    capsys.readouterr()
    assert main(["people", "list", "--json", *home]) == 0
    assert json.loads(capsys.readouterr().out) == []

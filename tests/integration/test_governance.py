"""Every data-protection control, proven on real photos."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facesearch import (
    ConfigError,
    FaceSearch,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Settings,
)
from facesearch.domain import Requester, Source
from facesearch.governance.access import access_report_html

from ..conftest import REGISTER_ARGS, register

EX = "face_recognition/examples"
OBAMA = [f"{EX}/obama.jpg", f"{EX}/obama-480p.jpg", f"{EX}/knn_examples/test/obama1.jpg"]
BIDEN = [f"{EX}/biden.jpg", f"{EX}/knn_examples/train/biden/biden2.jpg"]
OTHERS = [
    f"{EX}/knn_examples/train/kit_harington/john1.jpeg",
    f"{EX}/knn_examples/train/rose_leslie/img1.jpg",
    f"{EX}/knn_examples/train/alex_lacamoire/img1.jpg",
]
OBAMA_PROBE = f"{EX}/obama2.jpg"  # not in the collection
BIDEN_PROBE = f"{EX}/knn_examples/test/obama_and_biden.jpg"


@pytest.fixture(scope="module")
def template_home(dev: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with three sources: 'press' (GB people), 'case' (FR) and 'archive' (no
    jurisdiction, captured long ago). Copied for each test."""
    home = tmp_path_factory.mktemp("gov") / "home"
    manifest = home.parent / "archive.csv"
    manifest.write_text(
        "path,source_url,page_url,captured_at\n"
        + "".join(
            f"{dev / p},https://archive.example/{i}.jpg,https://archive.example/p/{i},2001-05-0{i}\n"
            for i, p in enumerate(OTHERS, start=1)
        )
    )
    with FaceSearch(Settings(home=home, workers=1)) as fs:
        register(fs, "press", jurisdictions=("GB",), controller="Daily Example")
        register(fs, "case", jurisdictions=("FR",))
        # Photos already past retention are refused at ingest: the archive kept them for a
        # century at first, then cut its period to a year, which expires them.
        register(fs, "archive", retention_days=36500)
        fs.ingest([dev / p for p in OBAMA], source="press")
        fs.ingest([dev / p for p in BIDEN], source="case")
        fs.ingest([manifest], source="archive")
        fs.update_source("archive", retention_days=365)
    return home


@pytest.fixture
def fs(template_home: Path, tmp_path: Path) -> Iterator[FaceSearch]:
    home = tmp_path / "home"
    shutil.copytree(template_home, home)
    with FaceSearch(Settings(home=home, workers=1)) as engine:
        yield engine


def embedding_bytes(fs: FaceSearch, face_ids: list[int]) -> list[bytes]:
    vectors = fs.catalog.embeddings(face_ids)
    return [np.asarray(v, dtype=np.float32).tobytes() for v in vectors]


def files_holding(home: Path, needles: list[bytes]) -> list[str]:
    """Every file under home that holds any needle (the first 64 bytes of it suffice)."""
    found = []
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if any(n[:64] in data for n in needles):
                found.append(str(path.relative_to(home)))
    return found


def likely_images(result: Any) -> int:
    """Images among the likely matches, copies folded into a row included."""
    return sum(len(m.copies) or 1 for m in result.matches if m.is_match)


def face_ids_of(fs: FaceSearch, image_ids: list[int]) -> list[int]:
    return [f.id for img in fs.catalog.get_images(image_ids).values() for f in img.faces]


def image_ids_of(fs: FaceSearch, source: str) -> list[int]:
    rows = fs.catalog.db.execute(
        "SELECT DISTINCT p.image_id FROM provenance p JOIN sources s ON s.id = p.source_id "
        "WHERE s.name = ? ORDER BY p.image_id",
        (source,),
    ).fetchall()
    return [r[0] for r in rows]


# -- sources and lawful basis --------------------------------------------------------------
def test_ingest_needs_a_registered_source_with_a_lawful_basis(fs: FaceSearch, dev: Path) -> None:
    before = fs.stats()
    with pytest.raises(NotFound, match="not registered"):
        fs.ingest([dev / OBAMA_PROBE], source="scraped")
    with pytest.raises(InvalidInput, match="lawful basis"):
        fs.add_source(Source("x", "because", "legal_claims", 30))
    with pytest.raises(InvalidInput, match=r"Art\. 9"):
        fs.add_source(Source("x", "consent", "none", 30))
    with pytest.raises(InvalidInput, match="for ever"):
        fs.add_source(Source("x", "consent", "explicit_consent", 0))
    with pytest.raises(InvalidInput, match="ISO 3166"):
        fs.add_source(Source("x", "consent", "explicit_consent", 30, jurisdictions=("Britain",)))
    assert fs.stats() == before
    listed = {s.name: s for s in fs.sources()}
    assert listed["press"].counts == {"images": 3, "faces": 3}
    assert listed["press"].jurisdictions == ("GB",)


def test_changing_retention_moves_expiry_dates(fs: FaceSearch) -> None:
    image = fs.show(image_ids_of(fs, "archive")[0])
    assert image.provenance[0].expires_at == "2002-05-01T00:00:00+00:00"  # 2001-05-01 + 365 d
    fs.update_source("archive", retention_days=730)
    image = fs.show(image.id)
    assert image.provenance[0].expires_at == "2003-05-01T00:00:00+00:00"


# -- retention ---------------------------------------------------------------------------------
def test_retention_removes_expired_images_and_everything_derived(fs: FaceSearch) -> None:
    archive = image_ids_of(fs, "archive")
    faces = face_ids_of(fs, archive)
    needles = embedding_bytes(fs, faces)
    assert len(archive) == 3 and files_holding(fs.home, needles)

    dry = fs.run_retention(dry_run=True)
    assert (dry.images_removed, dry.faces_removed, dry.dry_run) == (3, len(faces), True)
    assert set(image_ids_of(fs, "archive")) == set(archive)  # a dry run removes nothing

    receipt = fs.run_retention()
    assert sorted(receipt.image_ids) == sorted(archive)
    assert receipt.faces_removed == len(faces)
    assert image_ids_of(fs, "archive") == []
    assert files_holding(fs.home, needles) == []  # catalog, WAL, index: no copy left
    assert fs.stats()["index"]["consistent"]
    # Images not yet expired are untouched.
    assert len(image_ids_of(fs, "press")) == 3 and len(image_ids_of(fs, "case")) == 2


def test_a_legal_hold_suspends_retention(fs: FaceSearch) -> None:
    fs.update_source("archive", legal_hold=True)
    assert fs.run_retention().images_removed == 0
    fs.update_source("archive", legal_hold=False)
    assert fs.run_retention().images_removed == 3
    later = datetime.now(UTC) + timedelta(days=365 * 11)
    assert fs.run_retention(at=later).images_removed == 5  # the 10-year sources expire too


# -- erasure -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["image", "source", "jurisdiction", "person"])
def test_erasure_leaves_no_copy_and_no_result(fs: FaceSearch, dev: Path, kind: str) -> None:
    press = image_ids_of(fs, "press")
    if kind == "image":
        target = press[:1]
        receipt = fs.erase(image_ids=target)
    elif kind == "source":
        target = press
        receipt = fs.erase(sources=["press"])
    elif kind == "jurisdiction":
        target = press  # press lists GB
        receipt = fs.erase(jurisdiction="gb")
    else:
        review = fs.find_person(dev / OBAMA_PROBE)
        target = sorted(m.image.id for m in review.matches)
        assert target == sorted(press)  # every Obama photo, nobody else
        receipt = fs.erase(image_ids=target)
    faces = face_ids_of(fs, target)
    # (embeddings read before the erasure above would be gone now: read them from the receipt)
    assert sorted(receipt.image_ids) == sorted(target)
    assert receipt.faces_removed == len(receipt.face_ids) >= len(target)
    assert faces == []
    [result] = fs.search(dev / OBAMA_PROBE, top_k=50)
    assert not {m.image.id for m in result.matches} & set(target)
    assert fs.stats()["index"]["consistent"]
    receipt_json = json.dumps(receipt.as_dict())
    assert all(len(h) == 64 for h in receipt.image_sha256)
    assert "embedding" not in receipt_json


def test_erased_embeddings_are_not_left_in_any_file(fs: FaceSearch) -> None:
    target = image_ids_of(fs, "case")
    needles = embedding_bytes(fs, face_ids_of(fs, target))
    assert files_holding(fs.home, needles)  # present before
    fs.erase(sources=["case"])
    # Not in the catalog, its WAL, the index files, or anything else in the home.
    assert files_holding(fs.home, needles) == []


def test_an_erasure_dry_run_changes_nothing(fs: FaceSearch) -> None:
    before = fs.stats()
    receipt = fs.erase(sources=["press"], dry_run=True)
    assert receipt.images_removed == 3 and receipt.dry_run
    assert fs.stats() == before


def test_an_image_in_two_sources_survives_erasure_of_one(
    fs: FaceSearch, dev: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy.jpg"
    copy.write_bytes((dev / OBAMA[0]).read_bytes())
    fs.ingest([copy], source="case")
    receipt = fs.erase(sources=["case"])
    assert receipt.images_removed == 2  # the two Biden photos; the shared copy stays
    shared = fs.catalog.image_id_by_sha(hashlib.sha256(copy.read_bytes()).hexdigest())
    assert shared is not None and shared not in receipt.image_ids
    assert [p.source for p in fs.show(shared).provenance] == ["press"]
    assert len(image_ids_of(fs, "press")) == 3


# -- objection -----------------------------------------------------------------------------
def test_suppressed_people_are_skipped_by_ingest_and_hidden_from_search(
    fs: FaceSearch, dev: Path, tmp_path: Path
) -> None:
    [before] = fs.search(dev / OBAMA_PROBE, top_k=20)
    assert likely_images(before) == 3
    sid = fs.suppress(dev / OBAMA_PROBE, consent_ref="objection-2026-001")
    assert sid == 1
    [after] = fs.search(dev / OBAMA_PROBE, top_k=20)
    assert not any(m.image.id in image_ids_of(fs, "press") for m in after.matches)
    # Re-ingesting the same person's photos adds none of their faces.
    register(fs, "press2")
    copies = []
    for i, rel in enumerate([*OBAMA, "face_recognition/examples/obama-720p.jpg"]):
        copy = tmp_path / f"obama-{i}.png"
        from PIL import Image

        Image.open(dev / rel).save(copy)  # new bytes, same person
        copies.append(copy)
    report = fs.ingest(copies, source="press2")
    assert report.faces_indexed == 0
    assert report.faces_suppressed == len(copies)
    # Other people are not affected.
    [biden] = fs.search(dev / BIDEN[0], top_k=5)
    assert biden.matches and biden.matches[0].is_match


def test_suppression_templates_are_kept_apart_and_never_searchable(
    fs: FaceSearch, dev: Path
) -> None:
    fs.suppress(dev / OBAMA_PROBE, consent_ref="c-1")
    template = fs.suppressions.templates(fs.model.key)[1][0].tobytes()
    holders = files_holding(fs.home, [template])
    assert holders and all(h.startswith("suppression.sqlite") for h in holders)
    stats = fs.stats()
    assert stats["faces"] == 8  # the gallery did not grow


# -- access requests -------------------------------------------------------------------------
def test_an_access_request_reports_and_keeps_nothing(
    fs: FaceSearch, dev: Path, tmp_path: Path
) -> None:
    photo = (dev / OBAMA_PROBE).read_bytes()
    probe = fs.probe(photo)
    probe_embedding = probe.embeddings[0].tobytes()
    report = fs.access_request(photo)
    assert report["images_found"] == 3
    assert {i["image_id"] for i in report["images"]} == set(image_ids_of(fs, "press"))
    copy = report["images"][0]["copies"][0]
    assert copy["source"] == "press" and copy["controller"] == "Daily Example"
    assert copy["lawful_basis"].startswith("Art. 6(1)(f)")
    assert copy["kept_until"] and copy["collected_at"]
    html = access_report_html(report)
    assert "<img" not in html and "<script" not in html and "stylesheet" not in html
    # Nowhere on disk: neither the photo's bytes nor its template.
    middle = photo[len(photo) // 2 : len(photo) // 2 + 64]
    assert files_holding(fs.home, [middle, probe_embedding]) == []
    last = list(fs.audit.entries(action="access_request"))[-1]
    assert last.details["results"] == 3 and len(last.details["probe_sha256"]) == 64
    assert set(last.details) <= {
        "request_id",
        "probe_sha256",
        "results",
        "likely_matches",
        "sources",
        "top_k",
        "threshold",
    }


# -- purpose, jurisdiction and audit ---------------------------------------------------------
def test_searches_need_purpose_and_case_where_required(
    template_home: Path, tmp_path: Path, dev: Path
) -> None:
    home = tmp_path / "home"
    shutil.copytree(template_home, home)
    settings = Settings(
        home=home, workers=1, governance={"require_purpose": True, "blocked_jurisdictions": ["RU"]}
    )
    with FaceSearch(settings) as fs:
        with pytest.raises(InvalidInput, match="purpose"):
            fs.search(dev / OBAMA_PROBE)
        who = Requester(actor="inv-7", purpose="fraud investigation", case_ref="CASE-42")
        fs.search(dev / OBAMA_PROBE, who=who)
        with pytest.raises(PermissionDenied, match="RU"):
            fs.search(dev / OBAMA_PROBE, who=Requester("x", "p", "c", jurisdiction="RU"))
        [entry] = fs.export_audit("CASE-42")
        assert entry["actor"] == "inv-7" and entry["purpose"] == "fraud investigation"
        # Three Obama images, two of them copies of one photo (obama-480p): two rows.
        assert entry["details"]["likely_matches"] == 2
        assert "probe_sha256" in entry["details"]


def tamper(home: Path, sql: str) -> None:
    with sqlite3.connect(home / "audit.sqlite") as db:
        db.execute(sql)


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("UPDATE audit SET actor = 'someone else' WHERE seq = 3", "entry 3 was edited"),
        ("DELETE FROM audit WHERE seq = 2", "entry 2 missing"),
        (
            "UPDATE audit SET details = (SELECT details FROM audit WHERE seq = 4) WHERE seq = 3",
            "entry 3",
        ),
        ("DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)", "cut off the end"),
    ],
    ids=["edit", "delete", "reorder", "truncate"],
)
def test_audit_tampering_is_detected(fs: FaceSearch, dev: Path, sql: str, problem: str) -> None:
    fs.search(dev / OBAMA_PROBE)
    assert fs.verify_audit().ok
    tamper(fs.home, sql)
    result = fs.verify_audit()
    assert not result.ok and problem in (result.problem or "")


def test_a_true_reorder_of_two_entries_is_detected(fs: FaceSearch, dev: Path) -> None:
    fs.search(dev / OBAMA_PROBE)
    with sqlite3.connect(fs.home / "audit.sqlite") as db:
        rows = {r[0]: r for r in db.execute("SELECT * FROM audit WHERE seq IN (2, 3)")}
        db.execute("DELETE FROM audit WHERE seq IN (2, 3)")
        # Entry 3 stored before entry 2, each keeping its own content and number.
        db.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (2, *rows[3][1:]))
        db.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (3, *rows[2][1:]))
    result = fs.verify_audit()
    assert not result.ok and result.seq == 2


def test_transparency_report_counts_what_happened(fs: FaceSearch, dev: Path) -> None:
    fs.search(dev / OBAMA_PROBE, who=Requester("a", "missing person", "MP-1"))
    fs.search(dev / OBAMA_PROBE, who=Requester("a", "missing person", "MP-2"))
    fs.erase(sources=["case"])
    fs.run_retention()
    fs.access_request((dev / OBAMA_PROBE).read_bytes())
    fs.suppress(dev / BIDEN[0], consent_ref="c")
    report = fs.transparency_report()
    assert report["searches_by_purpose"] == {"missing person": 2}
    assert report["erased"]["images"] == 2 and report["expired"]["images"] == 3
    assert report["access_requests"] == 1 and report["suppressions_added"] == 1
    press = next(s for s in report["sources"] if s["name"] == "press")
    assert press["lawful_basis"] == "legitimate_interests" and press["images"] == 3


# -- encryption at rest ------------------------------------------------------------------------
def test_encrypted_homes_hold_no_plaintext_template(tmp_path: Path, dev: Path) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    home = tmp_path / "home"
    with FaceSearch(Settings(home=home, workers=1, encryption_key=key)) as fs:
        register(fs, "press")
        fs.ingest([dev / p for p in OBAMA], source="press")
        needles = embedding_bytes(fs, face_ids_of(fs, image_ids_of(fs, "press")))
        [result] = fs.search(dev / OBAMA_PROBE)
        assert likely_images(result) == 3
        seen: list[tuple[int, int]] = []
        rebuilt = fs.reindex(progress=lambda done, total: seen.append((done, total)))
        assert rebuilt["faces"] == len(needles) and seen[-1] == (len(needles), len(needles))
        [again] = fs.search(dev / OBAMA_PROBE)
        assert likely_images(again) == 3
    assert files_holding(home, needles) == []
    with pytest.raises(ConfigError, match="encrypted"):
        FaceSearch(Settings(home=home, workers=1))
    wrong = base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(ConfigError, match="not the key"):
        FaceSearch(Settings(home=home, workers=1, encryption_key=wrong))


# -- the commands ----------------------------------------------------------------------------
def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "facesearch.cli", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_governance_commands(template_home: Path, tmp_path: Path, dev: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(template_home, home)
    assert "press" in cli(home, "sources", "list").stdout
    bad = cli(
        home,
        "sources",
        "add",
        "x",
        "--lawful-basis",
        "whim",
        "--condition",
        "legal_claims",
        "--retention",
        "1y",
    )
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    assert cli(home, "sources", "add", "new", *REGISTER_ARGS).returncode == 0
    review = cli(home, "erase", "--person", str(dev / OBAMA_PROBE))
    assert review.returncode == 0 and "3 image(s) of this person" in review.stdout
    ids = [line.split()[1] for line in review.stdout.splitlines() if line.startswith("  image")]
    receipt = tmp_path / "receipt.json"
    done = cli(
        home,
        "erase",
        "--person",
        str(dev / OBAMA_PROBE),
        "--select",
        ",".join(ids[:2]),
        "--receipt",
        str(receipt),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(receipt.read_text())["images_removed"] == 2
    dsar_html = tmp_path / "dsar.html"
    dsar = cli(home, "dsar", str(dev / OBAMA_PROBE), "--html", str(dsar_html), "--json")
    assert json.loads(dsar.stdout)["images_found"] == 1
    assert "Access request" in dsar_html.read_text()
    dry = cli(home, "retention", "run", "--dry-run")
    assert "Would remove 3 images" in dry.stdout
    verify = cli(home, "audit", "verify")
    assert verify.returncode == 0 and "intact" in verify.stdout
    tamper(home, "UPDATE audit SET purpose = 'x' WHERE seq = 1")
    broken = cli(home, "audit", "verify")
    assert broken.returncode == 4 and "entry 1 was edited" in broken.stdout
    assert "Searches:" in cli(home, "report").stdout

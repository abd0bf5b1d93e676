"""A small gallery of real photos for the API, contract and browser tests, built once a session.

Two sources: ``newsroom`` (face_recognition's examples, with made-up archive URLs and
capture dates) and ``lfw`` (four LFW people, three photos each; a fourth photo of each
is kept out as a probe). Expected matches come from the labels in manifest.csv.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from facesearch import FaceSearch, Settings
from facesearch.accounts.sqlite import SqliteAccountStore
from facesearch.domain import Source
from facesearch.ingest.items import IngestItem

NEWSROOM = {
    "face_recognition/examples/obama.jpg": "2012-11-07",
    "face_recognition/examples/biden.jpg": "2013-01-20",
    "face_recognition/examples/knn_examples/train/alex_lacamoire/img1.jpg": "2016-06-12",
    "face_recognition/examples/knn_examples/train/kit_harington/john1.jpeg": "2017-07-16",
    "face_recognition/examples/knn_examples/train/rose_leslie/img1.jpg": "2018-06-23",
    "face_recognition/examples/lin-manuel-miranda.png": "2016-06-12",
}
LFW_PEOPLE = ("Justin_Leonard", "Marc_Grossman", "Martha_Burk", "Mary_Carey")
OBAMA_PROBE = "face_recognition/examples/obama2.jpg"
TWO_PEOPLE = "face_recognition/examples/knn_examples/test/obama_and_biden.jpg"
NO_FACE = "skimage/coffee.png"
# Every API search carries a purpose and a case reference (governance.api_require_purpose).
PURPOSE = {"purpose": "testing the search API", "case_ref": "TEST-1"}
TEST_OUTPUT = Path(__file__).resolve().parent.parent / "test-output"


def register(engine: FaceSearch, name: str, retention_days: int = 3650) -> None:
    """A source for tests: images may only be ingested into registered sources."""
    engine.add_source(
        Source(
            name=name,
            lawful_basis="legitimate_interests",
            special_category_condition="legal_claims",
            retention_days=retention_days,
        )
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def archive_url(rel: str) -> str:
    return "https://archive.example.org/photos/" + Path(rel).name


def page_url(rel: str) -> str:
    return "https://archive.example.org/stories/" + Path(rel).stem


@dataclass(frozen=True)
class Gallery:
    home: Path
    dev: Path
    identity: dict[str, str]  # absolute path of every ingested file -> label
    probes: dict[str, str]  # absolute path of each held-out probe -> label
    keys: dict[str, str]  # role (and "revoked") -> full API key

    def settings(self, **api: object) -> Settings:
        # No scheduled retention: the newsroom photos' capture dates are old enough to expire.
        return Settings(
            home=self.home,
            workers=1,
            api={"secure_cookies": True, **api},
            governance={"retention_interval_minutes": 0},
        )


def build_gallery(base: Path, dev: Path, manifest: list[dict[str, str]]) -> Gallery:
    home = base / "gallery-home"
    labels = {row["path"]: row["identity"] for row in manifest}
    lfw = {p: sorted(r for r in labels if r.startswith(f"lfw/{p}/")) for p in LFW_PEOPLE}
    identity = {str(dev / rel): labels[rel] for rel in NEWSROOM}
    identity.update({str(dev / rel): labels[rel] for files in lfw.values() for rel in files[:3]})
    probes = {str(dev / files[3]): labels[files[3]] for files in lfw.values()}
    probes[str(dev / OBAMA_PROBE)] = labels[OBAMA_PROBE]
    ready = home / "gallery-ready"
    if not ready.exists():
        with FaceSearch(Settings(home=home, workers=1)) as fs:
            # Photos already past retention are refused at ingest: the newsroom kept them
            # for a century at first, then cut its period to ten years (some expire).
            register(fs, "newsroom", retention_days=36500)
            register(fs, "lfw")
            items = [
                IngestItem(
                    path=dev / rel,
                    source_url=archive_url(rel),
                    page_url=page_url(rel),
                    captured_at=day,
                )
                for rel, day in NEWSROOM.items()
            ]
            fs.ingest(items, source="newsroom")
            fs.update_source("newsroom", retention_days=3650)
            fs.ingest([dev / rel for files in lfw.values() for rel in files[:3]], source="lfw")
        store = SqliteAccountStore(home / "accounts.sqlite")
        keys = {role: store.create_key(f"test {role}", role)[1] for role in _ROLES}
        revoked = store.create_key("test revoked", "admin")
        store.revoke_key(revoked[0].key_id)
        keys["revoked"] = revoked[1]
        store.add_user("ada", "correct horse battery", "search")
        store.close()
        (home / "keys.txt").write_text("\n".join(f"{k} {v}" for k, v in keys.items()))
        ready.touch()
    keys = dict(line.split(" ", 1) for line in (home / "keys.txt").read_text().splitlines())
    return Gallery(home=home, dev=dev, identity=identity, probes=probes, keys=keys)


_ROLES = ("admin", "ingest", "search", "auditor")

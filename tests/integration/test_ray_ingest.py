"""Ingest on Ray: real dlib models in Ray workers on real photos, against a local Ray
instance these tests start (two CPUs, no dashboard, a temporary folder of their own).

A Ray worker killed half-way, or the driver killed half-way and run again: afterwards no
image is lost, stored twice or stored without an audit entry, and searches answer."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facesearch import FaceSearch, Settings
from facesearch.cli import main
from facesearch.ingest.analyse import analyse, sha256_of
from facesearch.ingest.report import IngestReport

from ..conftest import REGISTER_ARGS, register
from ..engines.ray import ray_module
from ..procs import processes
from .test_ingest_crash import check_home, images_in

pytestmark = [pytest.mark.ray, pytest.mark.slow]

# Photos with none, one and several faces, and a PNG.
MIXED = [
    "face_recognition/examples/obama.jpg",
    "face_recognition/examples/two_people.jpg",
    "deepface/img1.jpg",
    "skimage/coffee.png",
]


def ray_workers() -> set[int]:
    """Process ids of the facesearch workers Ray runs on this machine (their title)."""
    return {pid for pid, cmdline in processes() if cmdline.startswith(b"ray::_Worker")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def ray_client(ray_address: str) -> Iterator[str]:
    """A Ray Client server in front of the local Ray (what `ray start --head` runs on a
    cluster's head): its ray:// address. In legacy mode, one server for all clients: the
    proxy mode's per-client servers are watched through /proc, which fails in sandboxes
    whose /proc shows another PID namespace (tests/procs.py); facesearch's side of the
    connection is the same in both."""
    port = free_port()
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "ray.util.client.server", "--address", ray_address),
            *("--host", "127.0.0.1", "--port", str(port), "--mode", "legacy"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, "the Ray Client server stopped"
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the Ray Client server did not start"
                time.sleep(0.2)
        yield f"ray://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.timeout(300)
def test_ray_workers_store_what_this_process_would(
    ray_address: str, dev: Path, tmp_path: Path
) -> None:
    # More workers than the cluster's two CPUs: as many as it has (an actor no CPU can
    # take would hold its jobs forever).
    settings = Settings(home=tmp_path / "home", workers=5, executor="ray")
    with FaceSearch(settings) as engine:
        register(engine, "dev")
        report = engine.ingest([dev / p for p in MIXED], source="dev")
        assert report.images_added == len(MIXED) and not report.failed
        for rel in MIXED:
            data = (dev / rel).read_bytes()
            expected = analyse(
                data,
                sha256_of(data),
                engine.limits,
                engine.settings.faces,
                engine.detector,
                engine.embedder,
            )
            image_id = engine.catalog.image_id_by_sha(expected.sha256)
            assert image_id is not None, rel
            stored = engine.catalog.get_images([image_id])[image_id]
            assert [f.box for f in stored.faces] == [f.box for f in expected.faces], rel
            if stored.faces:
                vectors = engine.catalog.embeddings([f.id for f in stored.faces])
                np.testing.assert_allclose(vectors, expected.embeddings, atol=1e-5, err_msg=rel)
        again = engine.ingest([dev / p for p in MIXED], source="dev")
        assert (again.images_added, again.unchanged) == (0, len(MIXED))
    assert not ray_workers(), "the workers are stopped when the ingest ends"


def test_a_ray_worker_killed_mid_ingest_loses_and_duplicates_nothing(
    ray_address: str, dev: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = sorted((dev / "lfw").rglob("*.jpg"))[:16]
    home = tmp_path / "home"
    killed: list[int] = []

    def kill_one_worker(report: IngestReport, done: int) -> None:
        if done >= 3 and not killed:
            victim = min(ray_workers())
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    with FaceSearch(Settings(home=home, workers=2, executor="ray")) as engine:
        register(engine, "lfw")
        report = engine.ingest(photos, source="lfw", progress=kill_one_worker)
        assert killed, "a worker was killed while the ingest ran"
        assert not report.failed and not report.interrupted
        assert report.images_added + report.copies_added == len(photos)
    # Ray's notice of the death is for the operator, on stderr: stdout carries --json.
    out, err = capsys.readouterr()
    assert "A worker died" in err and "raylet" not in out
    stored, hashes = check_home(home)
    assert stored == len({p.read_bytes() for p in photos}) == len(hashes)
    with FaceSearch(Settings(home=home, workers=1)) as engine:
        [result] = engine.search(photos[-1])
        assert result.matches[0].similarity > 0.99
        assert result.matches[0].image.path == str(photos[-1])


def test_the_driver_killed_mid_ingest_and_run_again_stores_each_image_once(
    ray_address: str, dev: Path, tmp_path: Path
) -> None:
    photos = sorted((dev / "lfw").rglob("*.jpg"))[16:40]
    home = tmp_path / "home"
    cli = [sys.executable, "-m", "facesearch.cli"]
    env = {**os.environ, "RAY_ADDRESS": ray_address}
    subprocess.run(
        [*cli, "sources", "add", "lfw", *REGISTER_ARGS, "--home", str(home)],
        check=True,
        capture_output=True,
    )
    ingest = [*cli, "ingest", *map(str, photos), "--home", str(home), "--source", "lfw"]
    ingest += ["--cluster", "auto", "--workers", "2", "--no-progress"]
    proc = subprocess.Popen(ingest, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while proc.poll() is None and images_in(home / "catalog.sqlite") == 0:
        assert time.monotonic() < deadline, "the ingest stored nothing in two minutes"
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    halfway, _ = check_home(home)
    assert 0 < halfway < len(photos)

    again = subprocess.run([*ingest, "--json"], env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["failures"] == 0 and report["images_added"] == len(photos) - halfway
    stored, _ = check_home(home)
    assert stored == len(photos)


def test_the_cli_ingests_through_a_ray_client_address(
    ray_client: str, dev: Path, tmp_path: Path
) -> None:
    home = str(tmp_path / "home")
    cli = [sys.executable, "-m", "facesearch.cli"]
    subprocess.run(
        [*cli, "sources", "add", "dev", *REGISTER_ARGS, "--home", home],
        check=True,
        capture_output=True,
    )
    photos = [str(dev / p) for p in MIXED[:2]]
    done = subprocess.run(
        [
            *(*cli, "ingest", *photos, "--source", "dev", "--home", home, "--json"),
            *("--cluster", ray_client, "--workers", "2"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["images_added"], report["faces_indexed"], report["failures"]) == (2, 3, 0)
    stored, _ = check_home(Path(home))
    assert stored == 2


@pytest.mark.parametrize(
    ("address", "env", "expected"),
    [
        ("ray://127.0.0.1:{port}", None, "cannot be reached"),
        ("auto", "127.0.0.1:{port}", "(RAY_ADDRESS) cannot be reached"),
        ("spark://host:7077", None, "is not a Ray address"),
    ],
)
def test_an_unusable_ray_address_is_one_line_and_a_non_zero_exit(
    address: str,
    env: str | None,
    expected: str,
    dev: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ray_module()
    home = str(tmp_path / "home")
    assert main(["sources", "add", "dev", *REGISTER_ARGS, "--home", home]) == 0
    port = free_port()
    address = address.format(port=port)
    if env is not None:
        env = env.format(port=port)
        monkeypatch.setenv("RAY_ADDRESS", env)
    photo = str(dev / MIXED[0])
    argv = ["ingest", photo, "--source", "dev", "--cluster", address, "--home", home]
    started = time.monotonic()
    assert main(argv) != 0
    assert time.monotonic() - started < 30
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert expected in err and (env or address) in err
    assert images_in(Path(home) / "catalog.sqlite") == 0


def test_a_local_ray_that_cannot_start_is_one_line_and_a_non_zero_exit(
    dev: Path, tmp_path: Path
) -> None:
    ray_module()
    home = str(tmp_path / "home")
    cli = [sys.executable, "-m", "facesearch.cli"]
    assert main(["sources", "add", "dev", *REGISTER_ARGS, "--home", home]) == 0
    # Ray's folder under a file: the local instance cannot start.
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_TMPDIR"] = str(dev / MIXED[0] / "ray")
    ingest = [*cli, "ingest", str(dev / MIXED[0]), "--source", "dev", "--home", home]
    done = subprocess.run([*ingest, "--cluster", "auto"], env=env, capture_output=True, text=True)
    err = done.stderr.strip()
    assert done.returncode != 0 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "cannot start or reach the local Ray" in err
    assert images_in(Path(home) / "catalog.sqlite") == 0

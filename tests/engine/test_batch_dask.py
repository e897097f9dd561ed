"""Batch runs on a Dask cluster (issue 26): the same bytes as in-process, a lost worker, bad
``--dask`` values.

Each cluster test starts real worker processes (``processes=True``), so each takes tens of
seconds on a small shared machine (most of it the workers importing torch and dlib); the inputs
are four 80 px photos. Clusters are closed by fixtures and context managers, also on failure.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io as stdio
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import __main__ as cli
from engine import batch, batch_exec, imaging, registry, weights
from engine import io as eio
from engine.batch import BatchError, run_batch
from engine.enhance import Enhancer
from tests.batch_outputs import output_files

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "astronaut.png"
STAMP = "2026-01-01T00:00:00+00:00"  # every record's time, so two runs can be byte-identical


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Four small photos (one face each, one with two faces) and a file that is not one."""
    rgb = np.asarray(eio.load(SAMPLE).rgb)
    face = imaging.resize(np.ascontiguousarray(rgb[0:200, 30:230]), 80, 80)
    root = tmp_path_factory.mktemp("dask") / "in"
    (root / "sub").mkdir(parents=True)
    for i, name in enumerate(["p0.png", "p1.png", "sub/p2.png"]):
        shifted = np.clip(face.astype(int) + 4 * i, 0, 255).astype(np.uint8)
        Image.fromarray(shifted).save(root / name)
    Image.fromarray(np.concatenate([face, face[:, ::-1]], axis=1)).save(root / "two.png")
    (root / "notes.txt").write_text("not an image\n")
    return root


@pytest.fixture(scope="module")
def tiny_rafsr(tmp_path_factory) -> Enhancer:
    """A small random RAFSR saved like installed weights: a real network in the workers."""
    import torch

    torch.manual_seed(0)
    entry = registry.get("s2_rafsr")
    module = registry.build(entry, 4, channels=8, n_ram=2, reduction=4).eval()
    wdir = tmp_path_factory.mktemp("weights")
    path = wdir / registry.weight_filename(entry, 4)
    weights.save(module, entry, 4, path, training={"test": "random init"})
    weights.update_manifest(path)
    return Enhancer(device="cpu", weights_dir=str(wdir))


@pytest.fixture(scope="module")
def expected(photos, tiny_rafsr, tmp_path_factory) -> dict[str, bytes]:
    """The in-process run's files: what every cluster run must write, byte for byte."""
    out = tmp_path_factory.mktemp("here") / "out"
    summary = run_batch(
        photos, out, ["bicubic", "s2_rafsr"], 4, enhancer=tiny_rafsr, time_utc=STAMP
    )
    assert (summary.ok, summary.errors, summary.faces) == (4, 1, 5)
    assert summary.executor == "in-process"
    return output_files(out)


@pytest.mark.slow
def test_local_cluster_outputs_are_the_in_process_bytes(photos, tiny_rafsr, expected, tmp_path):
    summary = run_batch(
        photos,
        tmp_path / "cluster",
        ["bicubic", "s2_rafsr"],
        4,
        enhancer=tiny_rafsr,
        time_utc=STAMP,
        dask="local:2",
    )

    assert summary.executor.startswith("local:2") and summary.workers == 2
    assert (summary.ok, summary.errors, summary.faces) == (4, 1, 5)
    assert summary.forward_passes == {"bicubic": 5, "s2_rafsr": 5}
    got = output_files(tmp_path / "cluster")
    assert sorted(got) == sorted(expected)
    assert len([n for n in got if n.endswith(".png")]) == 18  # 10 faces, 8 full photos
    for name, data in expected.items():  # every file, summary.csv included, byte for byte
        assert got[name] == data, name
    assert not (tmp_path / "cluster" / batch.STAGING_NAME).exists()


@pytest.fixture
def cluster():
    """A 2-worker LocalCluster the test reaches as an existing scheduler (tcp://...)."""
    from distributed import Client, LocalCluster

    local = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(local)
    try:
        yield local, client
    finally:
        client.close()
        local.close()


@pytest.mark.slow
def test_a_run_survives_a_worker_killed_mid_run(photos, tiny_rafsr, expected, tmp_path, cluster):
    local, client = cluster
    killed: list[tuple[int, list]] = []

    def kill_a_busy_worker(event: batch.BatchEvent) -> None:
        """At the first photo done while a worker still holds a task: SIGKILL that worker."""
        if event.kind != "file" or killed:
            return
        busy = {addr: keys for addr, keys in client.processing().items() if keys}
        if busy:
            addr = sorted(busy)[0]
            pid = client.run(os.getpid, workers=[addr])[addr]
            os.kill(pid, signal.SIGKILL)
            killed.append((pid, list(busy[addr])))

    summary = run_batch(
        photos,
        tmp_path / "cluster",
        ["bicubic", "s2_rafsr"],
        4,
        enhancer=tiny_rafsr,
        time_utc=STAMP,
        dask=local.scheduler_address,
        on_event=kill_a_busy_worker,
    )

    assert killed, "no worker held a task after a photo was done: nothing was killed"
    assert summary.executor == f"Dask scheduler {local.scheduler_address}"
    assert (summary.ok, summary.errors, summary.faces) == (4, 1, 5)
    assert output_files(tmp_path / "cluster") == expected
    assert killed[0][0] not in client.run(os.getpid).values()  # it really died


def test_a_bad_dask_value_is_refused_in_plain_words(photos, tmp_path, monkeypatch):
    out = tmp_path / "out"
    for value, words in [
        ("local", "not understood"),
        ("local:0", "1 to 256 workers"),
        ("tcp://host", "not understood"),
        ("http://10.0.0.5:8786", "tcp://HOST:PORT"),
    ]:
        with pytest.raises(BatchError, match=words):
            run_batch(photos, out, ["bicubic"], 4, dask=value)
    assert not out.exists()  # refused before anything was written
    parser = argparse.ArgumentParser()
    cli.add_batch_parser(parser.add_subparsers())
    args = parser.parse_args(
        ["batch", str(photos), str(out), "--model", "bicubic", "--dask", "local:x"]
    )
    args.case_log = str(tmp_path / "log")
    stream = stdio.StringIO()
    assert cli.run_batch_from_args(args, stream) == 2
    assert "--dask 'local:x' is not understood; use 'local:N'" in stream.getvalue()
    # An installation without Dask (the PyInstaller bundle) says what cluster mode needs.
    monkeypatch.setattr(batch_exec, "dask_available", lambda: False)
    with pytest.raises(BatchError, match="cluster mode needs the source install"):
        run_batch(photos, out, ["bicubic"], 4, dask="local:2")
    assert batch_exec.parse_spec(None).kind == "in-process"
    assert batch_exec.parse_spec("tcp://10.0.0.5:8786").address == "tcp://10.0.0.5:8786"


def test_a_worker_with_other_weights_gives_an_error_row_not_other_bytes(photos, tmp_path):
    """The task checks the loaded weights against the SHA-256 the driver verified."""
    from engine import batch_task

    enhancer = Enhancer(device="cpu")
    specs = batch._model_specs(["bicubic"], 4, enhancer)
    wrong = batch_task.ModelSpec("bicubic", ((4, "0" * 64),), "0" * 64)
    staging = tmp_path / "staging"
    staging.mkdir()
    task = batch_task.PhotoTask(
        index=0,
        path=photos / "p0.png",
        rel="p0.png",
        stem="p0",
        sha256=hashlib.sha256((photos / "p0.png").read_bytes()).hexdigest(),
        models=(wrong,),
        scale=4,
        detector="hog",
        allow_shrink=False,
        full=False,
        batch_faces=1,
        staging=staging,
    )
    models = batch_task.enhancer_models(enhancer)
    result = batch_task.process_photo(task, models)
    assert [r.status for r in result.rows] == ["error"]
    assert "the run verified 000000000000" in result.rows[0].error
    changed = dataclasses.replace(task, models=(specs["bicubic"],), sha256="1" * 64)
    result = batch_task.process_photo(changed, models)
    assert result.rows[0].status == "error" and "changed while the run" in result.rows[0].error


def test_the_cli_and_the_batch_engine_import_dask_only_for_a_cluster_run():
    import subprocess
    import sys

    code = (
        "import sys, engine.__main__, engine.batch; "
        "print(sorted({'dask', 'distributed'} & set(sys.modules)))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip() == "[]"

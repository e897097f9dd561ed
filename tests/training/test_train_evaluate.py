"""A few trainer steps on a tiny network (loss falls, checkpoint, resume, export the engine
loads), then the benchmark on a tiny folder with the baselines and that exported model."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine import imaging, registry, weights
from training import cards, evaluate, train, vgg
from training.config import REPO, TrainConfig, load_config

from .conftest import variants


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, face_cache: Path) -> dict:
    """A 20-step tiny RAFSR run on the synthetic cache, exported into a temporary weights dir."""
    root = tmp_path_factory.mktemp("train")
    cache = face_cache
    crops = list(np.load(cache / "train_hr.npy"))
    cfg = TrainConfig(
        name="tiny_rafsr_x4",
        model_id="s2_rafsr",
        scale=4,
        kwargs={"channels": 8, "n_ram": 1, "image_residual": True},
        data=str(cache),
        batch_size=4,
        steps=20,
        log_every=5,
        val_every=10,
        val_size=4,
        optimizer={"name": "adam", "lr": 2e-3, "betas": [0.9, 0.99], "eps": 1e-8},
        checkpoint_minutes=5.0,
        run_dir=str(root / "run"),
        export_dir=str(root / "weights"),
        notes=["tiny test network"],
    )
    torch.manual_seed(0)
    summary = train.train(cfg)
    return {"cfg": cfg, "summary": summary, "root": root, "crops": crops}


def test_training_lowers_the_loss_and_exports(trained: dict) -> None:
    summary, root = trained["summary"], trained["root"]
    history = json.loads((root / "run" / "summary.json").read_text())
    assert history["steps"] == 20 and summary["images_seen"] == 80
    losses = [
        h["loss"]
        for h in torch.load(root / "run" / "checkpoint.pt", weights_only=True)["history"]
        if "loss" in h
    ]
    assert losses[-1] < losses[0]
    assert not list((root / "run").glob("*.tmp"))  # checkpoints are written atomically
    assert (root / "run" / "loss.png").exists() and (root / "run" / "train.log").exists()
    out = root / "weights"
    assert {p.name for p in out.iterdir()} >= {
        "s2_rafsr_x4.safetensors",
        "manifest.json",
        "s2_rafsr_x4.md",
        "s2_rafsr_x4_loss.png",
    }
    card = (out / "s2_rafsr_x4.md").read_text()
    assert "non-commercial research only" in card and "tiny test network" in card
    assert "20 steps" in card
    entry = registry.get("s2_rafsr")
    assert weights.status(entry, 4, out) == "installed"
    model = weights.load(entry, 4, "cpu", out)
    assert model.metadata["model_id"] == "s2_rafsr"
    assert json.loads(model.metadata["kwargs"])["channels"] == 8
    assert json.loads(model.metadata["training"])["steps"] == 20
    sr = model.run(imaging.downscale(trained["crops"][0], 4))
    assert sr.shape == (128, 128, 3) and sr.dtype == np.uint8
    # The exported file holds the EMA weights the trainer validated with.
    ema = torch.load(root / "run" / "checkpoint.pt", weights_only=True)["ema"]
    for k, v in model.module.state_dict().items():
        assert torch.allclose(v, ema[k].float())


def test_resume_continues_from_the_checkpoint(trained: dict) -> None:
    cfg = load_config(Path(trained["cfg"].run_dir) / "config.json")
    cfg.steps = 24
    summary = train.train(cfg, resume=True, export=False)
    assert summary["steps"] == 24
    log = (Path(cfg.run_dir) / "train.log").read_text()
    assert "resumed from" in log and "at step 20" in log


def test_second_stage_records_every_stage(trained: dict, tmp_path: Path) -> None:
    """A run that starts from an exported file and overwrites it keeps the first run's record."""
    first = tmp_path / "s2_rafsr_x4.safetensors"
    shutil.copy(Path(trained["cfg"].export_dir) / first.name, first)
    cfg = load_config(Path(trained["cfg"].run_dir) / "config.json")
    cfg.name, cfg.steps, cfg.init_from = "tiny_rafsr_x4_long", 3, str(first)
    cfg.run_dir, cfg.export_dir = str(tmp_path / "run"), str(tmp_path)
    train.train(cfg)
    record = json.loads(weights.read_metadata(first)["training"])
    assert [(st["run"], st["steps"]) for st in record["stages"]] == [
        ("tiny_rafsr_x4", 20),
        ("tiny_rafsr_x4_long", 3),
    ]
    card = first.with_suffix(".md").read_text()
    assert "`tiny_rafsr_x4` 20 steps" in card
    assert "training/configs/tiny_rafsr_x4.json" in card  # the reproduce steps name both runs


def test_source_mix_draws_each_source_at_its_rate(tmp_path: Path, face_cache: Path) -> None:
    """source_mix: half the faces from the 2 "celebamask_hq" faces of 6, the rest uniform."""
    cache = tmp_path / "faces"
    shutil.copytree(face_cache, cache)
    names = ["utkface"] * 4 + ["celebamask_hq"] * 2
    (cache / "train_meta.json").write_text(json.dumps([{"source": s} for s in names]))
    faces = train.FaceSet(cache, "train")
    pools = train.source_pools(faces, {"celebamask_hq": 0.5})
    idx = train.draw_faces(np.random.default_rng(0), 20000, len(faces), pools)
    share = np.isin(idx, [4, 5]).mean()
    assert share == pytest.approx(0.5 + 0.5 * 2 / 6, abs=0.015)
    assert set(idx) == set(range(6))  # every face can still be drawn
    # no mix: the exact stream the trainer drew before source_mix existed
    assert np.array_equal(
        train.draw_faces(np.random.default_rng(1), 8, 6, []),
        np.random.default_rng(1).integers(0, 6, 8),
    )
    with pytest.raises(ValueError, match="no training faces"):
        train.source_pools(faces, {"helen": 0.3})
    with pytest.raises(ValueError, match="sum to"):
        train.source_pools(faces, {"celebamask_hq": 0.8, "utkface": 0.5})
    (cache / "train_meta.json").unlink()
    with pytest.raises(FileNotFoundError, match="source"):
        train.source_pools(train.FaceSet(cache, "train"), {"celebamask_hq": 0.5})


def test_scale_weights_draw_each_scale_at_its_rate() -> None:
    scales = [2, 3, 4, 8]
    p = train.scale_probabilities(scales, [1, 1, 2, 2])
    rng = np.random.default_rng(0)
    drawn = np.array([train.draw_scale(rng, scales, p) for _ in range(20000)])
    for scale, want in zip(scales, [1 / 6, 1 / 6, 1 / 3, 1 / 3], strict=True):
        assert (drawn == scale).mean() == pytest.approx(want, abs=0.015)
    # no weights: the exact stream the trainer drew before scale_weights existed
    assert train.scale_probabilities(scales, None) is None
    assert [train.draw_scale(np.random.default_rng(1), scales, None) for _ in range(3)] == [
        int(np.random.default_rng(1).choice(scales))
    ] * 3
    for bad in ([1, 1, 2], [1, -1, 1, 1], [0, 0, 0, 0]):
        with pytest.raises(ValueError, match="scale_weights"):
            train.scale_probabilities(scales, bad)


def test_reproduce_line_says_where_a_gpu_stage_ran() -> None:
    assert (
        cards.reproduce_line("m_long", "CPU AMD EPYC, 2 cores", 20)
        == "python -m training.train training/configs/m_long.json --minutes 20"
    )
    gpu = cards.reproduce_line("m_gpu", "CUDA NVIDIA H200")
    assert gpu.startswith("python -m training.train training/configs/m_gpu.json")
    assert "training/gpu_stage.sh" in gpu


def test_lr_schedule() -> None:
    sched = {"name": "cosine", "min_lr": 1e-6}
    assert train.lr_at(0.0, 0, 1e-4, sched) == pytest.approx(1e-4)
    assert train.lr_at(0.5, 50, 1e-4, sched) == pytest.approx((1e-4 + 1e-6) / 2)
    assert train.lr_at(1.0, 99, 1e-4, sched) == pytest.approx(1e-6)
    assert train.lr_at(0.3, 61, 1e-4, {"name": "step", "every": 30, "gamma": 0.9}) == pytest.approx(
        1e-4 * 0.81
    )


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown config keys"):
        TrainConfig.from_dict({"name": "x", "model_id": "s2_rafsr", "scale": 4, "lr": 1})
    shipped = REPO / "training" / "configs" / "s2_rafsr_x4.json"
    cfg = load_config(shipped)
    assert cfg.model_id == "s2_rafsr" and cfg.losses == {"l1": 1.0}
    assert cfg.optimizer["lr"] == 1e-4 and cfg.optimizer["betas"] == [0.9, 0.99]


def test_evaluate_baselines_and_exported_model(
    trained: dict, tmp_path: Path, astronaut, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safetensors.torch import save_file

    vgg_dir = tmp_path / "vgg"  # a random-weight LPIPS so the test needs no downloads
    vgg_dir.mkdir()
    torch.manual_seed(0)
    net = vgg.LPIPS()
    save_file(
        {
            k: v.abs().contiguous() if k.startswith("lins") else v.contiguous()
            for k, v in net.state_dict().items()
        },
        str(vgg_dir / vgg.LPIPS_FILE),
    )
    monkeypatch.setattr(vgg, "VGG_DIR", vgg_dir)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, v in enumerate(variants(astronaut, 2)):
        # Small photos keep dlib's upsampled detection quick.
        Image.fromarray(v).resize((150, 150), Image.Resampling.LANCZOS).save(
            photos / f"face{i}.png"
        )
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(photos / "wall.png")
    report = evaluate.evaluate(photos, 4, "all", weights_dir=trained["root"] / "weights")
    assert report["faces"] == 2 and report["skipped"] == ["wall.png"]
    results = report["results"]
    assert list(results) == ["bicubic", "lanczos", "s2_rafsr"]
    for metrics in results.values():
        assert set(evaluate.KEYS) <= set(metrics) and metrics["count"] == 2
        for k in evaluate.KEYS:
            assert np.isfinite(metrics[k]), k
    assert results["bicubic"]["psnr"] > 22 and 0 < results["bicubic"]["ssim"] < 1
    assert results["bicubic"]["identity_distance"] < 0.6  # still the same person
    md = evaluate.markdown(report)
    assert "| s2_rafsr |" in md and "1 photos skipped" in md
    out = tmp_path / "r.json"
    assert (
        evaluate.main(
            [
                "--images",
                str(photos),
                "--scale",
                "4",
                "--models",
                "bicubic",
                "--json",
                str(out),
                "--aligned",
                "--limit",
                "1",
            ]
        )
        == 0
    )
    assert json.loads(out.read_text())["bicubic"]["count"] == 1


def _trained_looking(net: torch.nn.Module) -> torch.nn.Module:
    """Random non-zero weights everywhere: a fresh image-residual net outputs exactly bicubic
    (zeroed output convs), which would make any two such nets agree."""
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net


def _saved_small(model_id: str, scale: int, kw: dict, tmp_path: Path):
    """A trained-looking small network of ``model_id`` saved as its weights file: what
    ``grow_from`` starts a bigger one from. Returns (entry, network, path)."""
    entry = registry.get(model_id)
    torch.manual_seed(0)
    small = _trained_looking(registry.build(entry, scale, **kw))
    path = tmp_path / f"{model_id}_x{scale}.safetensors"
    weights.save(small, entry, scale, path, training={"run": "small", "steps": 1})
    return entry, small, path


def test_grow_starts_deeper_network_where_the_file_left_off(tmp_path: Path) -> None:
    """grow: a 1-block S3 file starts a 3-block (and a wider) S3 that computes exactly what
    the file did; so does a RAFSR with one more RAM (its fusion conv, which sees every RAM,
    is widened with zero weights from the new one). Networks whose new layers would change
    the output are refused (IDRN sums every unit's output)."""
    entry = registry.get("s3_prior_guided")
    small_kw = {
        "channels": 8,
        "blocks": 1,
        "prior_channels": 8,
        "prior_blocks": 1,
        "hourglass_depth": 1,
        "image_residual": True,
    }
    torch.manual_seed(0)
    small = _trained_looking(registry.build(entry, 8, **small_kw))
    path = tmp_path / "s3_prior_guided_x8.safetensors"
    weights.save(small, entry, 8, path, training={"run": "small", "steps": 1})
    big = registry.build(entry, 8, **(small_kw | {"blocks": 3}))
    new = train.grow_from(big, dict(small.state_dict()), path, entry, 8)
    assert new == ["sr_body.1", "sr_body.2"]
    lr = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(big.eval()(lr), small.eval()(lr), atol=1e-5)
    assert not big.sr_body[2].conv_out.weight.any()  # the new block trains from the identity

    # wider too (S3's SR branch and fusing module 8 -> 16 channels): still the file's output,
    # and the new channels are live (they have weights to learn from), not dead zeros
    wide = registry.build(entry, 8, **(small_kw | {"blocks": 3, "channels": 16}))
    train.grow_from(wide, dict(small.state_dict()), path, entry, 8)
    with torch.no_grad():
        assert torch.allclose(wide.eval()(lr), small.eval()(lr), atol=1e-5)
    assert wide.sr_body[0].conv3.weight[8:].abs().sum() > 0
    assert not wide.sr_body[0].conv3.weight[:8, 8:].any()
    with pytest.raises(ValueError, match="whole multiple"):
        train.grow_from(
            registry.build(entry, 8, **(small_kw | {"channels": 12})),
            dict(small.state_dict()),
            path,
            entry,
            8,
        )
    with pytest.raises(ValueError, match="no place"):  # narrower is not growth
        train.grow_from(
            registry.build(entry, 8, **(small_kw | {"channels": 4})),
            dict(small.state_dict()),
            path,
            entry,
            8,
        )

    kw = {"channels": 8, "n_ram": 1, "image_residual": True}
    rafsr, r_small, r_path = _saved_small("s2_rafsr", 4, kw, tmp_path)
    r_big = registry.build(rafsr, 4, **(kw | {"n_ram": 2}))
    train.grow_from(r_big, dict(r_small.state_dict()), r_path, rafsr, 4)
    with torch.no_grad():
        x = torch.rand(1, 3, 32, 32)
        assert torch.allclose(r_big.eval()(x), r_small.eval()(x), atol=1e-5)

    # IDRN sums every unit's output (global-local residual): an identity unit still adds a term
    kw = {"channels": 8, "units": 1, "image_residual": True}
    idrn, i_small, i_path = _saved_small("s4_idrn", 4, kw, tmp_path)
    with pytest.raises(ValueError, match="change what it computes"):
        train.grow_from(
            registry.build(idrn, 4, **(kw | {"units": 2})),
            dict(i_small.state_dict()),
            i_path,
            idrn,
            4,
        )


def test_grow_widens_mffcn_through_its_concatenations(tmp_path: Path) -> None:
    """S1 concatenates inside every MFF (three branches) and at every decoder (upsampled +
    skip): a widened file must still compute what it did, with the new channels live."""
    kw = {"channels": 4, "levels": 3}
    entry, small, path = _saved_small("s1_mffcn", 4, kw, tmp_path)
    wide = registry.build(entry, 4, **(kw | {"channels": 8}))
    train.grow_from(wide, dict(small.state_dict()), path, entry, 4)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(wide.eval()(x), small.eval()(x), atol=1e-5)
    fuse = wide.encoders[0][0].fuse.weight  # old outputs read old branch channels only
    assert fuse[:4, 4:8].abs().sum() == 0 and fuse[:4, 8:12].abs().sum() > 0
    assert wide.decoders[0][0].b3.weight[4:].abs().sum() > 0  # new channels learn


def test_init_partial_starts_an_x2_network_from_an_x4_file(trained: dict, tmp_path: Path) -> None:
    """init_partial: every tensor of the x2 network that the x4 file has (same name, same
    shape) is loaded; the x4 file's second upsampling stage is left out; validation on a
    degraded family (val_degrade) runs."""
    cfg = load_config(Path(trained["cfg"].run_dir) / "config.json")
    cfg.name, cfg.model_id, cfg.scale, cfg.steps = "tiny_idrn", "s4_idrn", 2, 2
    cfg.kwargs = {"channels": 8, "units": 1, "image_residual": True}
    # an S4 x4 file to start from: a tiny IDRN exported at x4 by a 1-step run
    cfg4 = load_config(Path(trained["cfg"].run_dir) / "config.json")
    cfg4.name, cfg4.model_id, cfg4.scale, cfg4.steps = "tiny_idrn_x4", "s4_idrn", 4, 1
    cfg4.kwargs = cfg.kwargs
    cfg4.run_dir, cfg4.export_dir = str(tmp_path / "run4"), str(tmp_path / "w4")
    train.train(cfg4)
    cfg.init_from, cfg.init_partial = str(tmp_path / "w4" / "s4_idrn_x4.safetensors"), True
    cfg.degrade, cfg.val_degrade = "mix", "cctv"
    cfg.run_dir, cfg.export_dir = str(tmp_path / "run2"), str(tmp_path / "w2")
    summary = train.train(cfg)
    assert summary["steps"] == 2
    log = (tmp_path / "run2" / "train.log").read_text()
    assert "partly initialised" in log and "upsample.3.weight" in log  # the unused x4 stage
    card = (tmp_path / "w2" / "s4_idrn_x2.md").read_text()
    assert "cctv LR of training/degrade.py" in card and "mix degradation" in card
    with pytest.raises(RuntimeError):  # a plain (strict) init from the x4 file must fail
        cfg.init_partial = False
        cfg.run_dir = str(tmp_path / "run3")
        train.train(cfg, export=False)


def test_evaluate_degraded_families_same_lr_and_merge(
    trained: dict, tmp_path: Path, astronaut
) -> None:
    photos = tmp_path / "aligned"
    photos.mkdir()
    for i, v in enumerate(variants(astronaut, 2)):
        Image.fromarray(v).resize((128, 128), Image.Resampling.LANCZOS).save(photos / f"f{i}.png")
    out, md = tmp_path / "d.json", tmp_path / "d.md"
    wdir = str(trained["root"] / "weights")
    args = [
        "--images",
        str(photos),
        "--aligned",
        "--scale",
        "4",
        "--json",
        str(out),
        "--md",
        str(md),
        "--weights",
        wdir,
    ]
    assert evaluate.main(args + ["--models", "bicubic", "--degrade", "clean,jpeg"]) == 0
    assert evaluate.main(args + ["--models", "s2_rafsr", "--degrade", "jpeg", "--merge"]) == 0
    data = json.loads(out.read_text())
    assert list(data["families"]) == ["clean", "jpeg"]
    assert list(data["families"]["jpeg"]) == ["bicubic", "s2_rafsr"]
    assert list(data["families"]["clean"]) == ["bicubic"]
    jpeg_bic = data["families"]["jpeg"]["bicubic"]
    assert jpeg_bic["psnr"] < data["families"]["clean"]["bicubic"]["psnr"]
    assert jpeg_bic["hardware"] and "jpeg q40" in data["degradation"]["jpeg"]
    assert "## jpeg" in md.read_text() and "| s2_rafsr |" in md.read_text()
    # a run of one model and family replaces only its rows (no --merge needed) ...
    assert evaluate.main(args + ["--models", "bicubic", "--degrade", "clean"]) == 0
    again = json.loads(out.read_text())
    assert list(again["families"]["jpeg"]) == ["bicubic", "s2_rafsr"]
    assert again["families"]["jpeg"] == data["families"]["jpeg"]
    # ... and --fresh starts afresh
    assert evaluate.main(args + ["--models", "bicubic", "--degrade", "clean", "--fresh"]) == 0
    assert list(json.loads(out.read_text())["families"]) == ["clean"]


def test_x1_restore_trains_on_crops_from_an_x4_file_and_evaluates_against_the_input(
    trained: dict, tmp_path: Path, astronaut
) -> None:
    """Issue 24's x1 restore: started from an x4 IDRN file (head and units; the tail skipped,
    so it starts at the identity), trained on random crops of faces damaged at the native size;
    the benchmark at --scale 1 measures it against the degraded input itself."""
    kwargs = {"channels": 8, "units": 1, "image_residual": True}
    cfg4 = load_config(Path(trained["cfg"].run_dir) / "config.json")
    cfg4.name, cfg4.model_id, cfg4.scale, cfg4.steps = "tiny_idrn_x4", "s4_idrn", 4, 1
    cfg4.kwargs = kwargs
    cfg4.run_dir, cfg4.export_dir = str(tmp_path / "run4"), str(tmp_path / "w4")
    train.train(cfg4)
    cfg = load_config(REPO / "training" / "configs" / "s4_idrn_restore_x1.json")
    assert cfg.scale == 1 and cfg.crop and cfg.init_partial and cfg.init_skip == ["tail."]
    cfg.kwargs = kwargs
    cfg.data, cfg.source_mix = trained["cfg"].data, None
    cfg.steps, cfg.minutes, cfg.batch_size, cfg.val_size, cfg.crop = 2, None, 2, 2, 32
    cfg.log_every, cfg.val_every, cfg.threads = 1, 1000, None
    cfg.init_from = str(tmp_path / "w4" / "s4_idrn_x4.safetensors")
    cfg.run_dir, cfg.export_dir = str(tmp_path / "run1"), str(tmp_path / "w1")
    # the untrained start is exactly the input: the tail was not loaded and starts at zero
    (tmp_path / "probe").mkdir()
    start = train.build(cfg, tmp_path / "probe")
    x = torch.rand(1, 3, 40, 24)
    with torch.no_grad():
        assert torch.equal(start.model.eval()(x), x)
    crop = train.random_crop(
        {k: torch.rand(2, 3, 128, 128) for k in ("hr", "lr", "x")}
        | {"mask": torch.ones(2, 1, 128, 128)},
        32,
        1,
        np.random.default_rng(0),
    )
    assert crop["hr"].shape == crop["x"].shape == (2, 3, 32, 32) and crop["mask"].shape[-1] == 32
    summary = train.train(cfg)
    assert summary["steps"] == 2
    log = (tmp_path / "run1" / "train.log").read_text()
    assert "not loaded (kept at init): ['tail.bias', 'tail.weight']" in log
    card = (tmp_path / "w1" / "s4_idrn_restore_x1.md").read_text()
    assert "vs the degraded input" in card and "nothing enlarged" in card

    photos = tmp_path / "aligned"
    photos.mkdir()
    for i, v in enumerate(variants(astronaut, 2)):
        Image.fromarray(v).resize((128, 128), Image.Resampling.LANCZOS).save(photos / f"f{i}.png")
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    args = [
        "--images",
        str(photos),
        "--aligned",
        "--scale",
        "1",
        "--json",
        str(out),
        "--md",
        str(md),
        "--weights",
        str(tmp_path / "w1"),
        "--degrade",
        "clean,jpeg",
    ]
    assert evaluate.main(args) == 0
    data = json.loads(out.read_text())
    assert list(data["families"]["jpeg"]) == ["input", "s4_idrn_restore"]
    assert data["families"]["clean"]["input"]["psnr"] is None  # the input is the HR face
    assert "psnr_note" in data["families"]["clean"]["input"]
    assert data["families"]["jpeg"]["input"]["psnr"] < 60
    text = md.read_text()
    assert "the degraded input itself" in text and "| input |" in text


def test_evaluate_json_merges_rows_of_other_models(tmp_path: Path, astronaut) -> None:
    """Issue 24's bug: ``--json FILE`` replaced the whole file; rows keyed by model, family and
    scale are replaced, every other row (another model, another family) is kept."""
    photos = tmp_path / "aligned"
    photos.mkdir()
    for i, v in enumerate(variants(astronaut, 2)):
        Image.fromarray(v).resize((128, 128), Image.Resampling.LANCZOS).save(photos / f"f{i}.png")
    out = tmp_path / "degraded_x4.json"
    base = ["--images", str(photos), "--aligned", "--scale", "4", "--json", str(out)]
    assert evaluate.main(base + ["--models", "bicubic", "--degrade", "clean,jpeg"]) == 0
    first = json.loads(out.read_text())
    marker = first["families"]["jpeg"]["bicubic"] | {"psnr": -1.0}  # a row to be replaced
    first["families"]["jpeg"]["bicubic"] = marker
    first["families"]["jpeg"]["s9_other"] = {"psnr": 99.0}  # a row no run here measures
    out.write_text(json.dumps(first))
    assert evaluate.main(base + ["--models", "lanczos,bicubic", "--degrade", "jpeg"]) == 0
    data = json.loads(out.read_text())
    assert set(data["families"]["jpeg"]) == {"bicubic", "lanczos", "s9_other"}
    assert data["families"]["jpeg"]["s9_other"] == {"psnr": 99.0}  # kept
    assert data["families"]["jpeg"]["bicubic"]["psnr"] > 10  # replaced by the new measurement
    assert data["families"]["clean"] == first["families"]["clean"]  # another family kept
    with pytest.raises(ValueError, match="x2"):  # another scale never lands in this file
        evaluate.main([*base[:4], "2", *base[5:], "--models", "bicubic", "--degrade", "jpeg"])
    # the plain (clean) benchmark's file merges by model too
    plain = tmp_path / "quality_x4.json"
    plain.write_text(json.dumps({"s9_other": {"psnr": 1.0}}))
    plain_args = [*base[:-1], str(plain), "--models", "bicubic"]
    assert evaluate.main(plain_args) == 0
    assert list(json.loads(plain.read_text())) == ["bicubic", "s9_other"]
    assert evaluate.main([*plain_args, "--fresh"]) == 0
    assert list(json.loads(plain.read_text())) == ["bicubic"]


def test_identity_loss_trains_and_validation_watches_identity(
    trained: dict, tmp_path: Path
) -> None:
    """losses {"identity": w}: the term is logged per step, validation reports the dlib identity
    distance of the model and of bicubic, and crops (no whole face) are refused."""
    cfg = dataclasses.replace(
        trained["cfg"],
        name="tiny_rafsr_id_x4",
        batch_size=2,
        steps=4,
        log_every=2,
        val_every=4,
        val_size=2,
        losses={"l1": 1.0, "identity": 0.1},
        run_dir=str(tmp_path / "run"),
        export_dir=str(tmp_path / "weights"),
    )
    torch.manual_seed(0)
    summary = train.train(cfg, export=False)
    assert 0 < summary["val"]["identity"] < 2 and 0 < summary["val"]["bicubic_identity"] < 2
    history = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["history"]
    assert any("identity" in row for row in history if "loss" in row)
    assert any("val_identity" in row for row in history)
    cfg.crop, cfg.run_dir = 32, str(tmp_path / "crop")
    with pytest.raises(ValueError, match="identity"):
        train.train(cfg, export=False)

"""The enhancement pipeline on the sample face: shapes, determinism, provenance, cancel, errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import faces, imaging, io, provenance, registry, weights
from engine.enhance import Cancelled, CancelToken, Enhancer, paste_all
from engine.weights import MissingWeightsError

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "astronaut.png"
# The sample shrunk 2.5x, so its face (native frame about 32 px) fits x4 without shrinking;
# dlib's HOG box for it, fixed to keep these tests free of detection time.
FACE_BOX = (35.0, 15.0, 53.0, 33.0)
SMALL_RAFSR = {"channels": 8, "n_ram": 2, "reduction": 4}
SMALL_MFFCN = {"channels": 8, "levels": 2, "mff_per_level": 1, "max_channels": 16}


@pytest.fixture(scope="module")
def still(tmp_path_factory):
    big = io.load(SAMPLE)
    path = tmp_path_factory.mktemp("still") / "small.png"
    io.save_png(path, imaging.resize(big.rgb, 102, 102, "bicubic"), {})
    return io.load(path)


@pytest.fixture(scope="module")
def face(still):
    return faces.face_from_box(still.rgb, FACE_BOX)


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    """A weights folder with random-init small RAFSR x4 and MFFCN (all scales), in the manifest."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    for entry, scales, small in (
        (registry.get("s2_rafsr"), 4, SMALL_RAFSR),
        (registry.get("s1_mffcn"), [2, 3, 4, 8], SMALL_MFFCN),
    ):
        first = scales if isinstance(scales, int) else scales[0]
        net = registry.build(entry, first, **small)
        path = weights.weights_path(entry, first, folder)
        weights.save(net, entry, scales, path, {"run": "test"})
        weights.update_manifest(path)
    return folder


def test_bicubic_baseline(still, face):
    result = Enhancer(device="cpu").enhance(still, face, "bicubic", 4)
    assert result.lr.shape == (32, 32, 3) and result.sr.shape == (128, 128, 3)
    assert result.pasted.shape == (still.height * 4, still.width * 4, 3)
    assert result.sr.dtype == result.pasted.dtype == np.uint8
    assert np.array_equal(result.lr, faces.align(still.rgb, face, 32).pixels)
    assert np.array_equal(result.sr, imaging.upscale(result.lr, 4, "bicubic"))
    # The input's landmarks in the 128 frame sit where the template puts the eyes.
    eyes = result.input_landmarks[36:48].reshape(2, 6, 2).mean(1)
    assert np.allclose(eyes, faces.template_points(128)[:2], atol=6)
    assert result.output_landmarks is not None and result.output_landmarks.shape == (68, 2)
    # A bicubic face is still a face: its landmarks land near the input's (a few pixels).
    err = np.linalg.norm(result.output_landmarks - result.input_landmarks, axis=1).mean()
    assert err < 8
    assert set(result.timings) >= {"align", "model", "paste", "landmarks", "total"}
    assert all(v >= 0 for v in result.timings.values())
    assert result.provenance["model"]["weights_sha256"] is None


def test_provenance_fields(still, face):
    result = Enhancer(device="cpu").enhance(
        still, face, "lanczos", 8, face_index=2, allow_shrink=True
    )
    rec = result.provenance
    json.dumps(rec)  # plain JSON
    assert rec["label"] == provenance.AI_LABEL == "AI-enhanced image - not original evidence"
    assert rec["software"]["name"] == "Forensic Face Enhancer" and rec["software"]["version"]
    assert rec["time_utc"].endswith("+00:00")
    assert rec["input"]["path"] == str(still.path) and rec["input"]["sha256"] == still.sha256
    assert rec["input"]["original_mode"] == still.original_mode
    assert (rec["input"]["width"], rec["input"]["height"]) == (still.width, still.height)
    assert rec["face"]["index"] == 2 and rec["face"]["manual"] is True
    assert rec["face"]["box"] == [round(v, 2) for v in face.box]
    # the hand-drawn box as drawn (the landmarks were fitted in its square) and the warnings
    assert rec["face"]["drawn_boxes"] == [[round(float(v), 2) for v in FACE_BOX]]
    assert rec["face"]["fit_warnings"] == list(face.fit_warnings)
    model = rec["model"]
    assert (model["id"], model["paper"], model["variant"], model["scale"]) == (
        "lanczos",
        "baseline",
        "baseline",
        8,
    )
    assert model["title"] == "Lanczos interpolation" and model["weights_file"] is None
    assert rec["parameters"]["lr_size"] == 16 and rec["parameters"]["precision"] == "float32"
    # x8 was forced on a 32 px face: the shrink is on record and nothing was pasted back.
    assert rec["resolution"]["evidence_shrink"] == pytest.approx(face.native_frame_px / 16, 1e-3)
    assert rec["parameters"]["evidence_shrink"] > 1.9 and result.pasted is None
    assert rec["face"]["native_frame_px"] == pytest.approx(face.native_frame_px, abs=0.01)
    assert rec["device"] == "cpu"
    assert rec["versions"]["torch"] and rec["versions"]["numpy"] and rec["versions"]["dlib"]
    assert rec["outputs"] == []
    provenance.add_output(rec, "face", "/x/face.png", "ab" * 32)
    assert rec["outputs"] == [{"role": "face", "path": "/x/face.png", "sha256": "ab" * 32}]
    assert len(provenance.digest(rec)) == 64


def test_network_model_and_determinism(still, face, weights_dir):
    first = Enhancer(device="cpu", weights_dir=weights_dir)
    a = first.enhance(still, face, "s2_rafsr", 4)
    b = first.enhance(still, face, "s2_rafsr", 4)  # cached model
    c = Enhancer(device="cpu", weights_dir=weights_dir).enhance(still, face, "s2_rafsr", 4)
    assert a.sr.shape == (128, 128, 3) and a.pasted.shape == (408, 408, 3)
    for other in (b, c):
        assert a.sr.tobytes() == other.sr.tobytes()
        assert a.pasted.tobytes() == other.pasted.tobytes()
    # The network really ran: its output is not the bicubic baseline's.
    assert not np.array_equal(a.sr, imaging.upscale(a.lr, 4, "bicubic"))
    loaded = first.model("s2_rafsr", 4)
    assert np.array_equal(a.sr, loaded.run(a.lr))
    model = a.provenance["model"]
    assert model["weights_file"] == "s2_rafsr_x4.safetensors"
    assert model["weights_sha256"] == weights.file_sha256(weights_dir / model["weights_file"])
    assert model["weights_training"] == {"run": "test"}
    assert torch.are_deterministic_algorithms_enabled()


def test_upsampled_model_at_x3(still, face, weights_dir):
    result = Enhancer(device="cpu", weights_dir=weights_dir).enhance(still, face, "s1_mffcn", 3)
    assert result.lr.shape == (42, 42, 3) and result.sr.shape == (128, 128, 3)
    assert result.pasted.shape == (still.height * 3, still.width * 3, 3)


def test_missing_weights_never_run_random_ones(still, face, tmp_path):
    enhancer = Enhancer(device="cpu", weights_dir=tmp_path)
    with pytest.raises(MissingWeightsError, match=r"IDRN \(Fan et al. 2019\) x8 has no trained"):
        enhancer.enhance(still, face, "s4_idrn", 8)
    statuses = dict((e.id, s) for e, s in enhancer.models())
    assert statuses["s4_idrn"] == {2: "missing", 4: "missing", 8: "missing"}
    assert statuses["bicubic"][4] == "installed"
    with pytest.raises(ValueError, match="x4, x8, not x3"):
        enhancer.enhance(still, face, "s2_rafsr", 3)
    with pytest.raises(KeyError, match="unknown model"):
        enhancer.enhance(still, face, "nope", 4)


def test_cancel_before_start(still, face):
    token = CancelToken()
    token.cancel()
    assert token.cancelled
    enhancer = Enhancer(device="cpu")
    with pytest.raises(Cancelled):
        enhancer.enhance(still, face, "bicubic", 4, token=token)


def test_out_of_memory_retries_on_cpu(still, face, weights_dir):
    enhancer = Enhancer(device="cpu", weights_dir=weights_dir)
    expected = enhancer.enhance(still, face, "s2_rafsr", 4)
    loaded = enhancer.model("s2_rafsr", 4)
    on_gpu = dataclasses.replace(loaded, device="cuda")

    def out_of_memory(lr):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    on_gpu.run = out_of_memory
    signature = enhancer._file_signature(loaded.entry, 4)
    enhancer._models[("s2_rafsr", 4, "cuda")] = (on_gpu, signature)
    enhancer.device = "cuda"
    result = enhancer.enhance(still, face, "s2_rafsr", 4)
    assert np.array_equal(result.sr, expected.sr)
    assert result.device == "cpu" and result.provenance["device"] == "cpu"
    assert "out of memory" in result.provenance["notes"][0]


def test_paste_all_composes_faces(still, face):
    double = io.still_from_array(np.concatenate([still.rgb, still.rgb], axis=1), "double")
    shifted = (FACE_BOX[0] + still.width, FACE_BOX[1], FACE_BOX[2] + still.width, FACE_BOX[3])
    left = faces.face_from_box(double.rgb, FACE_BOX)
    right = faces.face_from_box(double.rgb, shifted)
    enhancer = Enhancer(device="cpu")
    results = [
        enhancer.enhance(double, f, "lanczos", 4, face_index=i) for i, f in enumerate((left, right))
    ]
    full = paste_all(double.rgb, results)
    half = still.width * 4
    # Each half carries its own face exactly as pasted alone; the faces do not overlap.
    assert np.array_equal(full[:, :half], results[0].pasted[:, :half])
    assert np.array_equal(full[:, half:], results[1].pasted[:, half:])
    assert not np.array_equal(results[0].pasted[:, half:], results[1].pasted[:, half:])


def test_device_choice(monkeypatch):
    from engine import device

    monkeypatch.setenv("FFE_DEVICE", "cpu")
    assert device.resolve() == "cpu" and Enhancer().device == "cpu"
    with pytest.raises(ValueError, match="not supported|unknown device"):
        device.resolve("tpu")
    if not torch.cuda.is_available():
        monkeypatch.setenv("FFE_DEVICE", "cuda")
        with pytest.raises(ValueError, match="sees no CUDA GPU"):
            Enhancer()


def test_too_large_full_image_leaves_the_face_result(still, face, monkeypatch):
    """A still too large to enlarge whole (e.g. x8 of 4000x3000) still yields its SR face."""
    from engine import faces as facelib

    monkeypatch.setattr(facelib, "MAX_PASTE_PIXELS", 1000)
    result = Enhancer("cpu").enhance(still, face, "bicubic", 4)
    assert result.pasted is None
    assert result.sr.shape == (128, 128, 3)
    assert any("full image not built" in n for n in result.provenance["notes"])
    with pytest.raises(ValueError, match="too large"):
        paste_all(still.rgb, [result])

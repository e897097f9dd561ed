"""training.metrics.gallery_scores: identification of probes against a gallery."""

import numpy as np

from training.metrics import gallery_scores


def _gallery(n: int = 30, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed).standard_normal((n, 128))
    return 0.3 * g / np.linalg.norm(g, axis=1, keepdims=True)  # faces about 0.42 apart


def test_exact_probes_are_identified_and_a_shuffled_set_is_not():
    gallery = _gallery()
    exact = gallery_scores(gallery.copy(), gallery)
    assert exact["rank1"] == 1.0 and exact["auc"] == 1.0
    assert np.all(exact["genuine"] == 0) and np.all(exact["margin"] > 0)
    shuffled = gallery_scores(np.roll(gallery, 1, axis=0), gallery)
    assert shuffled["rank1"] == 0.0 and abs(shuffled["auc"] - 0.5) < 0.1  # chance


def test_a_shift_towards_everyone_lowers_genuine_distance_but_not_identification():
    """Blurring pulls a descriptor towards the gallery's middle: closer to its own face, but
    closer still to everyone else's. The genuine distance alone would call that an improvement;
    rank-1, AUC and the margin do not."""
    gallery = _gallery(seed=1)
    noise = 0.02 * np.random.default_rng(2).standard_normal(gallery.shape)
    sharp = gallery + noise
    middle = gallery.mean(0)
    generic = 0.45 * sharp + 0.55 * middle
    s, g = gallery_scores(sharp, gallery), gallery_scores(generic, gallery)
    assert g["genuine"].mean() < s["genuine"].mean()
    assert g["impostor"] < s["impostor"]
    assert g["to_mean"] < s["to_mean"]
    assert g["margin"].mean() < s["margin"].mean()
    assert g["auc"] <= s["auc"]


def test_dlib_threshold_counts_accepted_pairs():
    gallery = np.zeros((3, 128))
    gallery[:, 0] = [0.0, 1.0, 2.0]
    probes = gallery.copy()
    probes[1, 1] = 0.7  # its own face 0.7 away: rejected at 0.6
    s = gallery_scores(probes, gallery)
    assert s["tar"] == 2 / 3
    assert s["far"] == 0.0

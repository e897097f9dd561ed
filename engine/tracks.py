"""Face tracks: faces found frame by frame, linked across frames, each frame's face scored.

:func:`detect_range` runs :func:`engine.faces.detect` on every frame of a range; :func:`link`
joins the detections into :class:`Track` s, frame to frame, by box overlap (IoU) and landmark
distance; :func:`quality` scores one face for the analyst (sharpness, size, frontalness) and
:meth:`Track.ranked` orders a track's frames by that score, with the reasons in plain words.

Linking is greedy and deterministic: at each frame, candidate (track, face) pairs are taken best
first; a track that misses a few frames (``max_gap``) can pick up again, so a face lost for a
frame or two behind a passer-by keeps its track.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np

from engine import faces as facelib

#: A face is joined to a track when the boxes overlap at least this much (IoU) ...
MIN_IOU = 0.2
#: ... or when the mean landmark distance is below this fraction of the box width.
MAX_LANDMARK_DISTANCE = 0.35
#: How many frames a track may miss and still continue.
MAX_GAP = 3
# Weights of the quality score (each part is scaled 0..1 within the track first).
WEIGHTS = {"sharpness": 0.4, "size": 0.3, "frontalness": 0.3}


@dataclass(frozen=True)
class Quality:
    """How useful one face in one frame is. Raw measures; see :meth:`Track.ranked` for scores."""

    sharpness: float  # variance of the Laplacian of the grey face inside its landmark hull
    size: float  # inter-ocular distance, pixels
    frontalness: float  # 1 = nose on the eyes' midline and both eyes equally far; 0 = profile
    nose_offset: float  # nose tip's distance from the eyes' midline, in inter-ocular distances


@dataclass(frozen=True)
class TrackFace:
    """One face of a track: the frame it is in, the face, its quality."""

    frame_index: int
    face: facelib.Face
    quality: Quality


@dataclass(frozen=True)
class RankedFace:
    """A track's frame with its score (0..1, relative to the track's best) and why."""

    frame_index: int
    score: float
    parts: dict[str, float]  # sharpness, size, frontalness, each 0..1 relative to the track
    words: str


@dataclass
class Track:
    """Faces of one person linked over frames, in frame order."""

    id: int
    faces: list[TrackFace] = field(default_factory=list)

    @property
    def frames(self) -> list[int]:
        return [f.frame_index for f in self.faces]

    @property
    def first(self) -> int:
        return self.faces[0].frame_index

    @property
    def last(self) -> int:
        return self.faces[-1].frame_index

    def face_at(self, frame_index: int) -> facelib.Face | None:
        return next((f.face for f in self.faces if f.frame_index == frame_index), None)

    def ranked(self) -> list[RankedFace]:
        """The track's frames, best first (ties: earlier frame first)."""
        if not self.faces:
            return []
        sharp = max(f.quality.sharpness for f in self.faces) or 1.0
        size = max(f.quality.size for f in self.faces) or 1.0
        out = []
        for f in self.faces:
            q = f.quality
            parts = {
                "sharpness": q.sharpness / sharp,
                "size": q.size / size,
                "frontalness": q.frontalness,
            }
            score = sum(WEIGHTS[k] * v for k, v in parts.items())
            words = (
                f"sharpness {parts['sharpness']:.2f} of the track's sharpest "
                f"(Laplacian variance {q.sharpness:.0f}); eyes {q.size:.1f} px apart "
                f"({parts['size']:.2f} of the largest); frontal {q.frontalness:.2f} "
                f"(nose {q.nose_offset * 100:.0f}% of the eye distance off the midline)"
            )
            out.append(
                RankedFace(
                    frame_index=f.frame_index, score=round(score, 4), parts=parts, words=words
                )
            )
        out.sort(key=lambda r: (-r.score, r.frame_index))
        return out

    def best(self, n: int) -> list[int]:
        """The ``n`` best frames by score, returned in frame order."""
        return sorted(r.frame_index for r in self.ranked()[:n])

    def record(self) -> dict:
        return {
            "id": self.id,
            "frames": self.frames,
            "boxes": [[round(v, 2) for v in f.face.box] for f in self.faces],
        }


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def landmark_distance(a: facelib.Face, b: facelib.Face) -> float:
    """Mean distance between corresponding landmarks, in units of the boxes' mean width."""
    width = max(1.0, (a.width + b.width) / 2)
    return float(np.linalg.norm(a.landmarks - b.landmarks, axis=1).mean() / width)


def quality(rgb: np.ndarray, face: facelib.Face) -> Quality:
    """Sharpness, size and frontalness of ``face`` in ``rgb`` (see :class:`Quality`)."""
    lm = np.asarray(face.landmarks, dtype=np.float64)
    left, right = lm[36:42].mean(0), lm[42:48].mean(0)
    iod = float(np.linalg.norm(right - left))
    # Sharpness: Laplacian variance over the landmark hull (face only, not the background).
    h, w = rgb.shape[:2]
    x0, y0 = np.floor(lm.min(0)).astype(int) - 2
    x1, y1 = np.ceil(lm.max(0)).astype(int) + 3
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    sharp = 0.0
    if x1 - x0 >= 3 and y1 - y0 >= 3:
        grey = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
        lap = cv2.Laplacian(grey.astype(np.float64), cv2.CV_64F, ksize=3)
        mask = np.zeros(grey.shape, np.uint8)
        hull = cv2.convexHull(np.rint(lm - [x0, y0]).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 1)
        inside = lap[mask.astype(bool)]
        if inside.size > 4:
            sharp = float(inside.var())
    # Frontalness: the nose tip (30) lies on the eyes' perpendicular bisector in a frontal face,
    # and the two eye-to-nose distances are equal.
    mid = (left + right) / 2
    axis = (right - left) / max(iod, 1e-6)
    offset = abs(float(np.dot(lm[30] - mid, axis))) / max(iod, 1e-6)
    d_left, d_right = np.linalg.norm(lm[30] - left), np.linalg.norm(lm[30] - right)
    asym = abs(d_left - d_right) / max(d_left + d_right, 1e-6)
    frontal = float(np.clip(1.0 - 2.0 * offset, 0, 1) * np.clip(1.0 - 2.0 * asym, 0, 1))
    return Quality(sharpness=sharp, size=iod, frontalness=frontal, nose_offset=offset)


def detect_range(
    frames: Iterable[tuple[int, np.ndarray]],
    method: str = "hog",
    check: Callable[[], None] | None = None,
    upsample: int | None = None,
) -> dict[int, list[tuple[facelib.Face, Quality]]]:
    """Faces (with their quality) in each ``(frame index, rgb)`` given.

    ``method`` is "hog", "cnn" or "auto" (HOG, then the CNN on a frame where HOG finds none:
    the stills' Auto, frame by frame).

    ``upsample`` as :func:`engine.faces.detect` (None: automatic, finds faces down to about
    20 px but costs time on large frames). ``check`` is called before every frame (a cancel
    token's ``check``).
    """
    out: dict[int, list[tuple[facelib.Face, Quality]]] = {}
    for index, rgb in frames:
        if check is not None:
            check()
        if method == "auto":  # as for stills: HOG, then the CNN where HOG finds no face
            found = facelib.detect(rgb, method="hog", upsample=upsample)
            found = found or facelib.detect(rgb, method="cnn", upsample=upsample)
        else:
            found = facelib.detect(rgb, method=method, upsample=upsample)
        out[index] = [(f, quality(rgb, f)) for f in found]
    return out


def link(
    detections: Mapping[int, list[tuple[facelib.Face, Quality]]],
    min_iou: float = MIN_IOU,
    max_landmark_distance: float = MAX_LANDMARK_DISTANCE,
    max_gap: int = MAX_GAP,
) -> list[Track]:
    """Join detections into tracks, frame by frame; tracks are returned longest first."""
    tracks: list[Track] = []
    for index in sorted(detections):
        found = detections[index]
        live = [t for t in tracks if index - t.last <= max_gap + 1]
        pairs = []
        for ti, track in enumerate(live):
            prev = track.faces[-1].face
            for fi, (face, _) in enumerate(found):
                overlap = iou(prev.box, face.box)
                dist = landmark_distance(prev, face)
                if overlap >= min_iou or dist <= max_landmark_distance:
                    pairs.append((overlap - dist, ti, fi))
        pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
        used_t, used_f = set(), set()
        for _, ti, fi in pairs:
            if ti in used_t or fi in used_f:
                continue
            used_t.add(ti)
            used_f.add(fi)
            face, q = found[fi]
            live[ti].faces.append(TrackFace(index, face, q))
        for fi, (face, q) in enumerate(found):
            if fi not in used_f:
                tracks.append(Track(id=len(tracks), faces=[TrackFace(index, face, q)]))
    tracks.sort(key=lambda t: (-len(t.faces), t.first, t.id))
    for new_id, track in enumerate(tracks):
        track.id = new_id
    return tracks


def track_faces(
    clip,
    start: int = 0,
    stop: int | None = None,
    step: int = 1,
    method: str = "hog",
    check: Callable[[], None] | None = None,
    upsample: int | None = None,
) -> list[Track]:
    """Detect faces in frames ``start:stop:step`` of an :class:`engine.video.Clip` and link them."""
    frames = ((f.index, f.rgb) for f in clip.iter_frames(start, stop, step))
    found = detect_range(frames, method=method, check=check, upsample=upsample)
    return link(found, max_gap=MAX_GAP * step)


def choose_track(tracks: list[Track], track: int | str = "auto") -> Track:
    """The track asked for: "auto" is the longest (ties: the one with the larger faces)."""
    if not tracks:
        raise facelib.FaceError("no face was found in the frames searched")
    if track == "auto":
        return max(
            tracks,
            key=lambda t: (len(t.faces), np.mean([f.quality.size for f in t.faces]), -t.id),
        )
    number = int(track)
    if not 0 <= number < len(tracks):
        raise facelib.FaceError(f"track {number} does not exist (0 to {len(tracks) - 1})")
    return tracks[number]

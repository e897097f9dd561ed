"""Screenshot of the clip timeline with a face track, rendered offscreen (docs/screenshots/timeline.png).

The timeline on its own (scripts/video_screenshot.py shows it in the window): the reference
frame of the track (face box drawn) above the timeline, whose strip marks the I-frames, the
track's frames (band) and the frames chosen for fusion (bright marks).

Usage: ``QT_QPA_PLATFORM=offscreen python scripts/timeline_screenshot.py [CLIP] [--out PNG]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PySide6.QtWidgets import QApplication, QLabel, QVBoxLayout, QWidget  # noqa: E402

from app.video_controller import describe  # noqa: E402
from app.views.common import rgb_to_pixmap  # noqa: E402
from app.views.timeline import Timeline  # noqa: E402
from engine import tracks, video  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "datasets" / "video" / "face-demographics-walking.gif"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("clip", type=Path, nargs="?", default=DEFAULT)
    parser.add_argument("--fuse", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots" / "timeline.png")
    args = parser.parse_args(argv)
    app = QApplication.instance() or QApplication([])
    with video.open_clip(args.clip) as clip:
        track = tracks.choose_track(tracks.track_faces(clip))
        best = track.ranked()[0].frame_index
        chosen = track.best(args.fuse)
        frame = clip.frame(best)
        info, frames = clip.info, list(clip.frames)
    rgb = np.array(frame.rgb)
    x0, y0, x1, y1 = (int(round(v)) for v in track.face_at(best).box)
    rgb[y0:y1, [x0, x1 - 1]] = (255, 200, 40)
    rgb[[y0, y1 - 1], x0:x1] = (255, 200, 40)
    window = QWidget()
    layout = QVBoxLayout(window)
    picture = QLabel()
    picture.setPixmap(rgb_to_pixmap(rgb))
    layout.addWidget(picture)
    timeline = Timeline()
    timeline.set_clip(frames, describe(info))
    timeline.go_to(best)
    timeline.show_frame_info(frame.record())
    timeline.set_track(track.frames, chosen)
    layout.addWidget(timeline)
    window.resize(rgb.shape[1] + 260, rgb.shape[0] + 120)
    window.show()
    app.processEvents()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(args.out))
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

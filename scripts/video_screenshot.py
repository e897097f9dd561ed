"""Screenshots of video evidence in the window: a clip open, a frame in use, its face track.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/video_screenshot.py [CLIP] [--frame N]

Opens the clip in the main window (1280x800), goes to frame ``--frame`` (default: the middle),
uses it ("Use this frame": faces found, logged), runs "Track and fuse this face" with the first
learned model installed at Auto (the scale the face's native size allows; bicubic when no
model is installed), and writes ``docs/screenshots/video_timeline.png`` (the whole window:
timeline with the clip's metadata and the track strip above the frame in use),
``docs/screenshots/video_track.png`` (the track window: its settings, the fused result beside
the single frame, the ranked frames to tick or untick) and ``docs/screenshots/video_fused.png``
(the fused output in the compare page, with its fidelity checks, ready to export). The default
clip is the committed sample, ``resources/samples/cctv_face.mp4`` (a 35 px face, H.264 at 0.3
bit/pixel); any clip can be given, e.g. Intel's IoT sample videos (CC BY 4.0) in
../shared/datasets/video. Runs the real engine; settings and the case log go to a temporary
folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from PySide6.QtWidgets import QApplication  # noqa: E402

from scripts.screenshots import demo_window, settle, wait_until  # noqa: E402

DEFAULT = REPO / "resources" / "samples" / "cctv_face.mp4"  # scripts/make_sample_clip.py


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path, nargs="?", default=DEFAULT)
    parser.add_argument("--frame", type=int, default=None)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    with tempfile.TemporaryDirectory() as tmp:
        window = demo_window(Path(tmp))
        video = window.video
        clip = args.clip
        window.open_file(clip)
        wait_until(lambda: video.frame is not None)
        frame = video.timeline.frame_count // 2 if args.frame is None else args.frame
        video.timeline.go_to(frame)
        wait_until(lambda: video.frame.index == frame)
        video.use_frame(frame)
        wait_until(lambda: window.still is not None and not window.busy_kinds() - {"init"})
        if not window.faces:
            raise SystemExit(f"no face found in frame {frame} of {args.clip}")
        # Auto (the default): the scale the face's native size allows, as for stills
        learned = [m for m in window.runnable_models() if not window.entry(m).is_baseline]
        window.set_model(learned[0] if learned else "bicubic")
        video.track_and_fuse()
        wait_until(lambda: video.outcome is not None, timeout_s=900)
        wait_until(lambda: not window.busy_kinds() - {"init", "caselog"}, timeout_s=300)
        video.dialog.resize(1000, 760)
        video.dialog.move(window.geometry().right() + 20, window.geometry().top())
        video.dialog.ranking.setFocus()  # no text cursor in the settings
        settle(300)
        window.grab().save(str(args.out / "video_fused.png"))  # the fused output, compared
        video.dialog.grab().save(str(args.out / "video_track.png"))
        window.show_page("still")
        window.image_view.fit()
        settle(300)
        window.grab().save(str(args.out / "video_timeline.png"))
        window.close()
    app.processEvents()
    for name in ("video_timeline.png", "video_track.png", "video_fused.png"):
        sys.stdout.write(f"{args.out / name}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

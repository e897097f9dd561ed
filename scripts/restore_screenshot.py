"""Screenshot of an x1 restore (issue 24) at 1280x800: a large, JPEG-damaged face cleaned at
its recorded size, the recorded crop beside the restored crop on the same pixel grid.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/restore_screenshot.py [--out DIR]

The evidence is made on the fly for the picture: the sample portrait enlarged 2.5x (its face
then about 190 px) and saved as JPEG quality 30, i.e. a large face with heavy blocking.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PIL import Image  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from scripts.screenshots import FULL_SAMPLE, demo_window, settle, wait_until  # noqa: E402

MODEL = "s4_idrn_restore"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    with tempfile.TemporaryDirectory() as tmp:
        still = Path(tmp) / "large_face_q30.jpg"
        with Image.open(FULL_SAMPLE) as im:
            big = im.convert("RGB").resize(
                (im.width * 5 // 2, im.height * 5 // 2), Image.Resampling.LANCZOS
            )
        big.save(still, quality=30)
        window = demo_window(Path(tmp))
        window.open_file(still)
        wait_until(lambda: window.still is not None and not window.busy_kinds() - {"init"})
        if not window.faces:
            raise SystemExit(f"no face found in {still}")
        window.opening.select_face(0)
        window.set_model(MODEL)
        window.set_scale(1)
        window.enhance()
        wait_until(lambda: window.current is not None)
        wait_until(window.fidelity_panel.has_values)
        window.show_page("side")
        settle(400)
        path = args.out / "restore_x1.png"
        window.grab().save(str(path))
        print(path, "scale", window.current.scale, "model", window.current.model_id)
        window.close()
    app.processEvents()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

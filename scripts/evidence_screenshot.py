"""Screenshot of the evidence-quality line and the recommended model (issue 24), 1280x800.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/evidence_screenshot.py [--out DIR]

Saves the small sample as a JPEG of quality 40 (compressed evidence, like a CCTV still) in a
temporary folder, opens it in the app with the real engine and grabs the window:
``evidence_compressed.png`` (the line above the faces and the model set to the robust
variant), then enhances the face and grabs ``evidence_enhanced.png`` (side by side, the
fidelity panel with its compression-aware consistency line), then opens the larger sample saved as
JPEG quality 40, decoded, cropped 3 px left and 5 px top and saved as PNG (a DVR export or a screenshot: no compression
recorded in the file) and grabs ``evidence_export.png`` (the block grid found in the pixels).
Settings and the case log go to the temporary folder.
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

from PIL import Image  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from scripts.screenshots import FULL_SAMPLE, SAMPLE, demo_window, settle, wait_until  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    with tempfile.TemporaryDirectory() as tmp:
        still = Path(tmp) / "cctv_still_q40.jpg"
        Image.open(SAMPLE).convert("RGB").save(still, quality=40)
        window = demo_window(Path(tmp))
        window.open_file(still)
        wait_until(lambda: window.still is not None and window.evidence_info.isVisible())
        settle(400)
        window.grab().save(str(args.out / "evidence_compressed.png"))
        print(window.evidence_info.text())
        print("model:", window.model_id)
        window.enhance()
        wait_until(lambda: window.current is not None)
        wait_until(lambda: bool(window.fidelity_panel.rows()))
        settle(600)
        window.grab().save(str(args.out / "evidence_enhanced.png"))
        print(window.current.provenance["model_choice"])
        export = Path(tmp) / "dvr_export.png"
        once = Path(tmp) / "portrait_q40.jpg"
        Image.open(FULL_SAMPLE).convert("RGB").save(once, quality=40)
        with Image.open(once) as im:
            im.convert("RGB").crop((3, 5, im.width, im.height)).save(export)
        window.open_file(export)
        wait_until(lambda: window.still is not None and window.still.path == export)
        wait_until(lambda: "block grid" in window.evidence_info.text())
        settle(400)
        window.grab().save(str(args.out / "evidence_export.png"))
        print(window.evidence_info.text())
        window.close()
    app.processEvents()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

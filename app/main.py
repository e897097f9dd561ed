"""Entry point: create the QApplication, show the main window, run the event loop.

``python -m app [IMAGE]`` or the ``ffe-gui`` script. An image given on the command line is
opened at start-up.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from PySide6.QtWidgets import QApplication

from app.main_window import APPLICATION, ORGANISATION, MainWindow, app_icon


def main(argv: Sequence[str] | None = None) -> int:
    """Run the app; returns the process exit code."""
    argv = list(sys.argv if argv is None else argv)
    parser = argparse.ArgumentParser(prog="ffe-gui", description=APPLICATION)
    parser.add_argument("image", nargs="?", help="a still to open at start-up")
    parser.add_argument("--verbose", action="store_true", help="log debug messages")
    args, qt_args = parser.parse_known_args(argv[1:])
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = QApplication.instance() or QApplication([argv[0], *qt_args])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setWindowIcon(app_icon())
    window = MainWindow()
    window.show()
    if args.image:
        window.open_file(args.image)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())

"""The case report's PDF: engine's HTML markup printed to A4 by Qt, written atomically.

Runs in the worker thread (QTextDocument and QPdfWriter paint on a paged device, not a widget).
"""

from __future__ import annotations

import os
from pathlib import Path


def output_error(path: Path, reason: str) -> Exception:
    from engine import io

    return io.OutputError(path, reason)


def write_bytes(path: Path, data: bytes) -> str:
    """engine.io's atomic writer; returns the file's SHA-256."""
    from engine import io as eio

    return eio.write_bytes_atomic(path, data)


def write_pdf(html_text: str, path: Path) -> str:
    """Render ``html_text`` to an A4 PDF at ``path`` (atomically); returns the file's SHA-256.

    QTextDocument + QPdfWriter, which may run outside the GUI thread (they paint on a paged
    device, not a widget). The HTML is the engine's plain report markup, which QTextDocument
    renders with its embedded ``data:`` images.
    """
    from PySide6.QtCore import QMarginsF
    from PySide6.QtGui import QPageLayout, QPageSize, QPdfWriter, QTextDocument

    if not path.parent.is_dir():
        raise output_error(path, f"the folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    document = QTextDocument()
    document.setHtml(html_text)
    writer = QPdfWriter(str(tmp))
    writer.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
    writer.setPageMargins(QMarginsF(15, 15, 15, 15), QPageLayout.Unit.Millimeter)
    writer.setResolution(300)
    writer.setTitle("Forensic Face Enhancer - case report")
    writer.setCreator("Forensic Face Enhancer")
    document.print_(writer)
    del writer  # the file is complete once the writer is gone
    try:
        data = tmp.read_bytes()
    except OSError as exc:
        raise output_error(path, f"the PDF could not be written ({exc.strerror or exc})") from exc
    tmp.unlink(missing_ok=True)
    if not data.startswith(b"%PDF"):
        raise output_error(path, "Qt did not produce a PDF")
    return write_bytes(path, data)

"""Help > About: what the app is, the papers behind its models with full citations, and the label.

The list is built from ``engine.registry.MODELS`` (the one source of truth), with each model's
weights status when the worker has reported it, so the dialog never claims a model that the
registry does not have or that cannot run.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTextBrowser, QVBoxLayout, QWidget

from app.views.common import AI_LABEL
from engine import __version__

STATUS_WORDS = {"installed": "trained weights installed", "missing": "no trained weights"}


def papers_html(entries: Iterable, statuses: dict[str, dict[int, str]] | None = None) -> str:
    """HTML listing every model grouped by paper, with citation and per-scale weights status."""
    statuses = statuses or {}
    by_paper: dict[str, list] = {}
    for entry in entries:
        by_paper.setdefault(entry.paper, []).append(entry)
    parts = []
    for paper, group in by_paper.items():
        first = group[0]
        heading = "Interpolation baselines" if paper == "baseline" else f"{paper}: {first.title}"
        parts.append(f"<h3>{html.escape(heading)}</h3>")
        if paper != "baseline":
            parts.append(
                f"<p><i>{html.escape(first.authors)}</i><br>{html.escape(first.citation)}</p>"
            )
        parts.append("<ul>")
        for entry in group:
            scales = []
            for scale in entry.scales:
                state = statuses.get(entry.id, {}).get(scale)
                if entry.is_baseline:
                    words = "built in, no weights needed"
                elif state:
                    words = STATUS_WORDS.get(state, state)
                else:
                    words = "status not checked yet"
                scales.append(f"\u00d7{scale}: {html.escape(words)}")
            name = html.escape(getattr(entry, "label", entry.id))
            line = f"<li><b>{name}</b> (<code>{html.escape(entry.id)}</code>, {entry.variant})"
            if paper == "baseline":
                line += f"<br>{html.escape(entry.citation)}"
            parts.append(line + "<br>" + "; ".join(scales) + "</li>")
        parts.append("</ul>")
    return "\n".join(parts)


class AboutDialog(QDialog):
    """Modeless-friendly About box (opened with ``open()``)."""

    def __init__(
        self,
        entries: Iterable,
        statuses: dict[str, dict[int, str]] | None = None,
        device: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Forensic Face Enhancer")
        self.resize(720, 640)
        intro = QLabel(
            f"<h2>Forensic Face Enhancer {html.escape(__version__)}</h2>"
            "<p>Face super-resolution for forensic analysts. The original file is never modified; "
            "every output records what made it and is labelled "
            f"<b>\u201c{html.escape(AI_LABEL)}\u201d</b>. An enhanced face is a model's estimate, "
            "not a recovered detail: never use it as evidence of identity.</p>"
            + (f"<p>Computing on: <b>{html.escape(device)}</b></p>" if device else "")
        )
        intro.setWordWrap(True)
        self.papers = QTextBrowser()
        self.papers.setOpenExternalLinks(False)
        self.papers.setHtml(papers_html(entries, statuses))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.papers, 1)
        layout.addWidget(buttons)

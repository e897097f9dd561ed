"""Dialogs: About (papers and citations)."""

from __future__ import annotations

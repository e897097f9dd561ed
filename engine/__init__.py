"""Inference engine of the Forensic Face Enhancer: no Qt here, usable from scripts, tests,
training and the GUI. Nothing heavy happens at import."""

from __future__ import annotations

__version__ = "0.1.0"

"""Widgets that show images: the still, input vs output, the grid of all models."""

from __future__ import annotations

"""The PySide6 desktop front end. Reaches torch only through ``engine``, in the worker thread."""

from __future__ import annotations

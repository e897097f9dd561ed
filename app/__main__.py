"""``python -m app``: start the Forensic Face Enhancer window."""

from __future__ import annotations

from app.main import main

raise SystemExit(main())

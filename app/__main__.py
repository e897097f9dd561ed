"""``python -m app``: start the Forensic Face Enhancer window."""

from __future__ import annotations

from app.main import main

if __name__ == "__main__":  # not when a worker process of a local Dask cluster imports it
    raise SystemExit(main())

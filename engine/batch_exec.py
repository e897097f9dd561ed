"""Where a folder run's per-photo tasks run: in this process, or on a Dask cluster.

:func:`open_executor` gives an :class:`Executor` with a ``concurrent.futures``-style
``submit(task) -> future`` (``future.result(timeout)``, ``future.cancel()``):

* ``None`` (the default): a thread of this process runs the tasks with the caller's
  :class:`engine.enhance.Enhancer` (its loaded models, its device) while the caller's thread
  moves finished outputs into place and keeps the summary;
* ``"local:N"``: a ``distributed.LocalCluster`` of N worker processes on this computer, one
  thread each (torch and OpenCV pinned to one thread in every worker: :mod:`engine.batch_task`);
* ``"tcp://HOST:PORT"``: an existing Dask scheduler (``dask scheduler``) and its workers
  (``dask worker tcp://HOST:PORT --nthreads 1``), on machines that see the input and output
  folders under the same paths.

Dask is imported only here and only when a cluster is asked for: the app and the CLI start
without it, and an installation without it (the PyInstaller bundle) says plainly that cluster
mode needs the source install. Every worker must run this software's version (checked when the
run starts); each loads a model once and checks its weights against the SHA-256 the driver
verified.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine import __version__

if TYPE_CHECKING:  # the app imports this module for parse_spec and dask_available: it stays
    from engine.batch_task import PhotoTask  # light (no torch, no dlib, no Dask) until a run
    from engine.progress import CancelToken

log = logging.getLogger(__name__)

IN_PROCESS = "in-process"
MAX_LOCAL_WORKERS = 256
_LOCAL = re.compile(r"^local:(\d+)$")
_TCP = re.compile(r"^tcp://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]+):(\d{1,5})$")
USAGE = (
    "use 'local:N' (a cluster of N worker processes on this computer, e.g. local:4) or "
    "'tcp://HOST:PORT' (an existing Dask scheduler, e.g. tcp://10.0.0.5:8786)"
)
NEEDS_SOURCE = (
    "cluster mode needs the source install: this installation has no dask and distributed "
    "(install the app from source with `make run`, or `pip install dask distributed`)"
)


class ClusterError(ValueError):
    """The executor asked for cannot be used (bad spec, Dask missing, scheduler unreachable)."""


@dataclass(frozen=True)
class ClusterSpec:
    """A parsed ``--dask`` value: ``kind`` is "in-process", "local" or "scheduler"."""

    kind: str
    workers: int = 1
    address: str = ""

    def describe(self) -> str:
        if self.kind == "local":
            return f"local:{self.workers} (Dask LocalCluster, {self.workers} worker processes)"
        if self.kind == "scheduler":
            return f"Dask scheduler {self.address}"
        return IN_PROCESS


def parse_spec(text: str | None) -> ClusterSpec:
    """``None``/"" -> in-process, ``local:N``, ``tcp://HOST:PORT``; ClusterError otherwise."""
    value = (text or "").strip()
    if not value or value == IN_PROCESS:
        return ClusterSpec(IN_PROCESS)
    if match := _LOCAL.match(value):
        n = int(match.group(1))
        if not 1 <= n <= MAX_LOCAL_WORKERS:
            raise ClusterError(f"--dask local:N needs 1 to {MAX_LOCAL_WORKERS} workers, not {n}")
        return ClusterSpec("local", workers=n)
    if (match := _TCP.match(value)) and 0 < int(match.group(2)) < 65536:
        return ClusterSpec("scheduler", address=value)
    raise ClusterError(f"--dask {value!r} is not understood; {USAGE}")


def dask_available() -> bool:
    """Whether cluster mode can work here (without importing Dask: startup stays quick)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("dask", "distributed"))


@dataclass
class Executor:
    """Runs :class:`PhotoTask` s. ``submit`` returns a future; ``workers`` is how many tasks run
    at once (the driver keeps about twice that many submitted)."""

    spec: ClusterSpec
    submit: Callable[[PhotoTask], Any]
    workers: int
    client: Any = None  # the distributed.Client, when on Dask

    @property
    def description(self) -> str:
        return self.spec.describe()


@contextmanager
def open_executor(spec: ClusterSpec, enhancer: Any, token: CancelToken) -> Iterator[Executor]:
    """The executor for ``spec``; closed (threads joined, a local cluster shut down) on exit."""
    from engine.batch_task import enhancer_models, process_photo, run_on_worker

    if spec.kind == IN_PROCESS:
        models = enhancer_models(enhancer)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-task")
        try:
            yield Executor(spec, lambda task: pool.submit(process_photo, task, models, token), 1)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return
    if not dask_available():
        raise ClusterError(NEEDS_SOURCE)
    with _dask_client(spec) as client:
        workers = _check_workers(client, spec)
        run = secrets.token_hex(4)

        def submit(task: PhotoTask) -> Any:
            return client.submit(
                run_on_worker, task, key=f"ffe-photo-{run}-{task.index}", pure=False
            )

        yield Executor(spec, submit, workers, client)


@contextmanager
def _dask_client(spec: ClusterSpec) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)  # not every connection
    if spec.kind == "local":
        try:
            cluster = LocalCluster(
                n_workers=spec.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.WARNING,
            )
        except Exception as exc:  # noqa: BLE001 - the reason, in words, for the analyst
            raise ClusterError(f"the local Dask cluster did not start: {exc}") from exc
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    try:
        client = Client(spec.address, timeout="10s")
    except Exception as exc:  # noqa: BLE001 - OSError/TimeoutError from the connection
        raise ClusterError(f"no Dask scheduler answered at {spec.address}: {exc}") from exc
    try:
        yield client
    finally:
        client.close()


def code_fingerprint() -> str:
    """This software's version and the SHA-256 of the engine's source files: what a worker
    must share with the driver for its outputs to be the driver's bytes."""
    import hashlib
    from pathlib import Path

    import engine

    root = Path(engine.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0")
        digest.update(path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:16]}"


def _check_workers(client: Any, spec: ClusterSpec) -> int:
    """How many workers the cluster has (at least one), each running this very engine."""
    try:
        client.wait_for_workers(1, timeout=60)
    except Exception as exc:  # noqa: BLE001 - a TimeoutError, in words
        raise ClusterError(f"no Dask worker joined {spec.describe()} within 60 s") from exc
    here = code_fingerprint()
    other = {a: v for a, v in client.run(code_fingerprint).items() if v != here}
    if other:
        raise ClusterError(
            f"{len(other)} Dask worker(s) run other code than this computer ({here}): "
            f"{other}; install the same version of the software on every worker"
        )
    from engine.batch_task import warm_up

    client.run(warm_up)  # every worker at once: threads pinned, torch and dlib's models loaded
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    return max(1, sum(int(w.get("nthreads", 1)) for w in workers))

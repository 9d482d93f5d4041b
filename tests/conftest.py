"""Shared fixtures. Real data comes from ../shared/data beside the checkout (CI has it there)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Under pytest-xdist (`make test` runs a worker per core), each worker and every process it starts use
# their share of the cores, set before torch loads: two torch processes spinning OpenMP threads on the
# same cores slow each other tenfold.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _share = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _share // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))

import torch  # noqa: E402  (after the thread share above)

from lmlab.presets import get_preset

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LMLAB_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Every test session gets its own token cache, and relative source paths resolve in shared/data."""
    old = {k: os.environ.get(k) for k in ("LMLAB_CACHE", "LMLAB_DATA")}
    os.environ["LMLAB_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["LMLAB_DATA"] = str(SHARED_DATA)
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real corpora; a missing folder is a failure with instructions, never a silent skip."""
    if not (SHARED_DATA / "tinyshakespeare" / "input.txt").is_file():
        pytest.fail(f"real data not found at {SHARED_DATA}: put shared/ beside the checkout "
                    f"or set LMLAB_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shakespeare(shared_data) -> Path:
    return shared_data / "tinyshakespeare" / "input.txt"


@pytest.fixture
def tiny_cfg():
    return get_preset("tiny")


@pytest.fixture(autouse=True)
def _deterministic():
    """Seeded, and at this process's thread count: a run trained in-process with train.threads set
    leaves torch at its count, and a later run compared bit for bit with a subprocess must not inherit it."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture()
def inproc(monkeypatch):
    """An in-process executor (same worker, same files as `local`), so tests can inject faults."""
    from lmlab.study.executors import EXECUTORS, Executor

    def run(jobs, workers, address, started, finished):
        from lmlab.study.worker import run_one

        for job in jobs:
            started(job)
            finished(job, run_one(str(job.run_dir), str(job.config_path), str(job.status_path), 1))

    monkeypatch.setitem(EXECUTORS._items, "inproc", Executor(run))
    return "inproc"

"""Running a run's tasks without a broker: in this process, or in a few local processes.

The same task bodies run as on Celery workers; only the transport differs (the embedded default).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed

from outreach import db
from outreach.db import session_scope
from outreach.runs import service as runs
from outreach.settings import get_settings
from outreach.storage import get_storage

Progress = Callable[[int, int], None]


def _render(run_id: int, batch_seq: int) -> int:
    # The render task's body without its "finish when last" step: here the caller finishes once at the end.
    with session_scope() as session:
        outcome = runs.render_batch(
            session=session, run_id=run_id, batch_seq=batch_seq, storage=get_storage()
        )
    return outcome.failed


def _fresh_process() -> None:
    # A spawned process reads the settings anew and opens its own connections.
    get_settings.cache_clear()
    db.dispose_engines()


def run_locally(run_id: int, *, processes: int = 1, progress: Progress | None = None) -> None:
    """Renders every pending batch of the run, then finishes it; `progress(done, total)` after each batch."""

    with session_scope() as session:
        run = runs.get(session=session, run_id=run_id)
        todo = runs.pending_batches(session=session, run=run) if run.state == "rendering" else []
        total = run.batch_count
    done = total - len(todo)
    if progress:
        progress(done, total)
    if processes <= 1 or len(todo) <= 1:
        for seq in todo:
            _render(run_id, seq)
            done += 1
            if progress:
                progress(done, total)
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=processes, mp_context=ctx, initializer=_fresh_process) as pool:
            futures = [pool.submit(_render, run_id, seq) for seq in todo]
            for future in as_completed(futures):
                future.result()
                done += 1
                if progress:
                    progress(done, total)
    with session_scope() as session:
        state = runs.get(session=session, run_id=run_id).state
    if state in ("rendering", "assembling"):
        with session_scope() as session:
            runs.finish(session=session, run_id=run_id, storage=get_storage())

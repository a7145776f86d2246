"""Running a run without a broker: kept for callers of the old name; the executor does the work.

The rule "render the pending batches, then finish" lives in outreach/runs/executor.py.
"""

from __future__ import annotations

from outreach.runs.executor import Progress, run_local


def run_locally(run_id: int, *, processes: int = 1, progress: Progress | None = None) -> None:
    """Renders every pending batch of the run here (in `processes` processes), then finishes it."""
    run_local(run_id, processes=processes, progress=progress, force=True)

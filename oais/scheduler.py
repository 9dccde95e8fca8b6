"""APScheduler jobs. Jobs call services; they hold no logic and no state of their own."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

log = logging.getLogger("oais.scheduler")


def drop_folder_job(drop: Any, make_context: Callable[[], Any],
                    report: Callable[[Any, dict[str, Any]], None] | None = None) -> Callable[[], None]:
    """A job that polls a drop folder once (``oais.services.dropfolder.poll``)."""
    from oais.services.dropfolder import poll

    def job() -> None:
        for r in poll(drop, make_context(), report):
            log.info("drop folder: %s -> %s (%s)", r["entry"], r["moved_to"], r["disposition"])

    return job


def run_blocking(jobs: dict[str, tuple[Callable[[], None], float]]) -> None:
    """Run ``{name: (job, interval_seconds)}`` until interrupted; each job never overlaps itself."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler()
    for name, (job, interval) in jobs.items():
        scheduler.add_job(job, "interval", seconds=interval, id=name, max_instances=1, coalesce=True,
                          next_run_time=datetime.now(timezone.utc))
    scheduler.start()

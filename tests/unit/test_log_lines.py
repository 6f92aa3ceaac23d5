"""What the logs keep of the job queue's own lines below debug level."""

from __future__ import annotations

import logging

import pytest

from leadflow.entrypoints.logs import _quiet_job_chatter


def _record(name: str, level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


@pytest.mark.parametrize(("name", "level", "message", "kept"), [
    ("huey", logging.INFO, "Executing leadflow.entrypoints.worker.nurture: 4f2", False),
    ("huey", logging.INFO, "leadflow.entrypoints.worker.nurture: 4f2 executed in 0.1s", False),
    ("huey.consumer.Scheduler", logging.INFO, "Enqueueing periodic task x: 1.", False),
    ("huey.consumer", logging.INFO, "Huey consumer started with 1 thread", True),
    ("huey", logging.WARNING, "Requeueing x, 4 retries", True),
    ("huey", logging.ERROR, "Executing x failed", True),
    ("leadflow.worker", logging.INFO, "Executing the nurture pass", True),
])
def test_only_per_job_chatter_is_left_out(name: str, level: int, message: str,
                                          kept: bool) -> None:
    assert _quiet_job_chatter(_record(name, level, message)) is kept

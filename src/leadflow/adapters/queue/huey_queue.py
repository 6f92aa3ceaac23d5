"""Huey instance, the jobs it runs, and a consumer that can run inside another process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey
from huey.consumer import Consumer

from leadflow.adapters.db.engine import try_again_later
from leadflow.domain.errors import InvalidInput, Unavailable

log = logging.getLogger("leadflow.queue")


def make_huey(*, name: str, redis_url: str | None, sqlite_path: Path) -> Huey:
    if redis_url:
        try:
            return RedisHuey(name, url=redis_url)
        except ValueError as exc:
            raise InvalidInput(f"not a Redis URL: {exc}", field="LEADFLOW_REDIS_URL") from None
    sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(name, filename=str(sqlite_path), journal_mode="wal")


class EmbeddedConsumer(Consumer):  # type: ignore[misc]
    """A Huey consumer run from a thread of another process (``leadflow serve``): that
    process owns the signal handlers, so this one installs none."""

    def _set_signal_handlers(self) -> None:
        return None


def queue_depth(huey: Huey) -> int:
    return int(huey.pending_count()) + int(huey.scheduled_count())


def check_reachable(huey: Huey, where: str) -> None:
    """Fail at start, in one line, rather than log a traceback per poll for ever."""
    try:
        queue_depth(huey)
    except Exception as exc:  # redis or sqlite: whatever the storage raises
        raise Unavailable(f"cannot reach the job queue at {where}: "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                          ) from None


class RelayLoop:
    """Runs ``step`` every ``interval`` seconds in a thread until stopped; ``step`` returns
    how much it did, and a busy step runs again at once."""

    def __init__(self, step: Callable[[], int], interval: float) -> None:
        self.step = step
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leadflow-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.step()
            except Exception as exc:  # a failed round is logged; the next one tries again
                reason = try_again_later(exc)
                if reason is not None:  # one line, not a traceback
                    log.warning(f"relay round: {reason}; trying again at the next round")
                else:
                    log.exception("relay round failed")
                busy = 0
            if not busy:
                self._stop.wait(self.interval)


def task_names(huey: Huey) -> list[str]:
    registry: Any = huey._registry._registry
    return sorted(registry)

"""Long operations started from a page (imports, rescoring): run in a thread of the web
process, their progress polled by the page (static/app.js, ``[data-progress-url]``).

The board lives in the process's memory: a page must poll the process that started the work
(true of ``leadflow serve``; behind a load balancer, use sticky sessions or the CLI).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("leadflow.web")
KEEP = 50  # finished operations remembered


@dataclass
class Operation:
    id: str
    owner_id: int
    label: str
    done: int = 0
    total: int = 0
    finished: bool = False
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    redirect: str | None = None
    kind: str = ""  # what it is (one limit per kind), e.g. "backtest"

    def report(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    def as_json(self) -> dict[str, Any]:
        """How far it got, for the page's progress bar. Not its result: the page that shows
        it checks who may see it."""
        return {"id": self.id, "label": self.label, "done": self.done, "total": self.total,
                "finished": self.finished, "error": self.error, "redirect": self.redirect}


class ProgressBoard:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._operations: dict[str, Operation] = {}

    def start(self, *, owner_id: int, label: str,
              work: Callable[[Operation], dict[str, Any] | None],
              redirect: str | None = None, kind: str = "") -> Operation:
        """Run ``work(operation)`` in a thread; it calls ``operation.report(done, total)``
        as it goes and returns a summary kept in ``result``. ``redirect``: the page to show
        when it is over (``{id}`` is replaced with the operation's id)."""
        operation = Operation(id=secrets.token_urlsafe(12), owner_id=owner_id, label=label,
                              kind=kind)
        operation.redirect = redirect.replace("{id}", operation.id) if redirect else None

        def run() -> None:
            try:
                operation.result = work(operation) or {}
            except Exception as exc:  # shown on the page; the details go to the log
                if not getattr(exc, "message", None):
                    log.exception("operation failed", extra={"operation": label})
                operation.error = str(getattr(exc, "message", None) or
                                      "it failed on our side; the details are logged")
            finally:
                operation.finished = True
        with self._lock:
            self._operations[operation.id] = operation
            finished = [k for k, v in self._operations.items() if v.finished]
            for key in finished[:-KEEP]:
                del self._operations[key]
        threading.Thread(target=run, name=f"web-{label}", daemon=True).start()
        return operation

    def running(self, *, kind: str, owner_id: int | None = None) -> list[Operation]:
        """Operations of ``kind`` not finished yet (of one owner, if given)."""
        with self._lock:
            return [o for o in self._operations.values() if o.kind == kind and not o.finished
                    and (owner_id is None or o.owner_id == owner_id)]

    def get(self, operation_id: str, *, owner_id: int) -> Operation | None:
        with self._lock:
            operation = self._operations.get(operation_id)
        return operation if operation is not None and operation.owner_id == owner_id else None


class OperationProgress:
    """The services' Progress port (``start``/``advance``/``finish``), told to an operation
    of the board: what a page's progress bar shows of an import or a rescore."""

    def __init__(self, operation: Operation) -> None:
        self.operation = operation
        self.done = 0
        self.total = 0

    def start(self, description: str, total: int) -> None:
        del description
        self.done, self.total = 0, total
        self.operation.report(0, total)

    def advance(self, amount: int) -> None:
        self.done += amount
        self.operation.report(min(self.done, self.total), self.total)

    def finish(self) -> None:
        self.operation.report(self.total, self.total)

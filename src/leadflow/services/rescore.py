"""Full rescore: re-evaluate the current rules against every raw event, set-based."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from leadflow.domain.lifecycle import rebuild_from_history
from leadflow.domain.ports import BulkScoring, Progress, ScoreDifference, UnitOfWork
from leadflow.services.context import Context


@dataclass
class RescoreReport:
    contacts_changed: int = 0
    differences: list[ScoreDifference] = field(default_factory=list)
    differing_contacts: int = 0
    caught_up: int = 0


def check_scores(*, scoring: BulkScoring, progress: Progress, tolerance: float = 1e-9,
                 limit: int | None = None) -> RescoreReport:
    """Compare stored (incremental) scores with a from-scratch recomputation; write nothing."""
    scores = scoring.recompute(progress)
    report = RescoreReport()
    contacts: set[int] = set()
    for diff in scoring.differences(scores, tolerance=tolerance):
        contacts.add(diff.contact_id)
        if limit is None or len(report.differences) < limit:
            report.differences.append(diff)
    report.differing_contacts = len(contacts)
    return report


def rescore_all(*, scoring: BulkScoring, progress: Progress,
                uow_factory: Callable[[], UnitOfWork], ctx: Context,
                late_contacts: Callable[[int], list[int]]) -> RescoreReport:
    """Recompute and store every contact's engagement under the current rules.

    Events that arrive while the rescore runs are caught up afterwards, contact by contact.
    """
    changed, watermark = scoring.rescore(progress)
    report = RescoreReport(contacts_changed=changed)
    for contact_id in late_contacts(watermark):
        with uow_factory() as uow:
            contact = uow.contacts.get(contact_id)
            if contact is None:
                continue
            rebuild_from_history(contact, uow.events.history(contact_id), ctx.config)
            uow.contacts.save(contact)
            uow.commit()
        report.caught_up += 1
    return report

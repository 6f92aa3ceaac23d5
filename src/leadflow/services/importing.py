"""Importing contacts and their behaviour from the rows of a file, as a mapping says.

Rows go in chunks, one transaction each. A chunk is read in a few queries (who is known, who
was erased, which events are stored); its new contacts are written together, inside a
savepoint; known contacts that the row changes are written one by one, each in a savepoint of
its own. Whatever fails is undone alone — the failed batch is redone row by row — so a bad row
is reported with its line and never half written, and the good rows import. Contacts are found
again by their identity (the file's id, or their email) and events carry message ids made from
it, so importing the same file twice updates contacts and duplicates nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from leadflow.domain.config import LifecycleConfig
from leadflow.domain.errors import ConfigInvalid, ConfigProblem, LeadflowError, Suppressed
from leadflow.domain.model import Contact
from leadflow.domain.ports import Progress, UnitOfWork, UnitOfWorkFactory
from leadflow.services.context import Context
from leadflow.services.import_batch import create_batch
from leadflow.services.import_mapping import ImportMapping
from leadflow.services.import_row import ImportTarget, apply_row, identity_hashes, write_row
from leadflow.services.import_rows import RowPlan, SourceRow, plan_row
from leadflow.services.import_values import zone

log = logging.getLogger("leadflow.import")
IMPORTABLE_ROLES = ("entry", "interest", "handoff", "commit", "won")


@dataclass(frozen=True)
class RowIssue:
    line: int
    reason: str
    column: str | None = None


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    events: int = 0
    skipped: list[RowIssue] = field(default_factory=list)  # erased people: they stay gone
    bad: list[RowIssue] = field(default_factory=list)


def import_stage(*, mapping: ImportMapping, config: LifecycleConfig) -> str:
    """The stage rows import at; ConfigInvalid (with the mapping's location) if unusable."""
    spec = mapping.stage
    if spec.key is not None and not config.has_stage(spec.key):
        problem = f"unknown stage {spec.key!r} (stages: {', '.join(s.key for s in config.stages)})"
    elif spec.role is not None and not config.stages_with_role(spec.role):
        problem = f"no stage has the role {spec.role!r}"
    else:
        key = spec.key or config.first_stage(spec.role or "entry").key
        role = config.role_of(key)
        if role not in IMPORTABLE_ROLES:
            problem = f"contacts cannot be imported into the {role} stage {key!r}"
        elif role != "entry" and not spec.reason:
            problem = f"say why rows enter at {key!r} (stage.reason)"
        else:
            return key
    raise ConfigInvalid(mapping.source, [ConfigProblem(spec.where, problem)])


def import_contacts(
    *, uow_factory: UnitOfWorkFactory, ctx: Context, mapping: ImportMapping,
    rows: Iterable[SourceRow], total: int, progress: Progress, chunk_size: int = 500,
) -> ImportReport:
    """Create or update one contact per row, with its events; report every row left out."""
    target = ImportTarget(stage=import_stage(mapping=mapping, config=ctx.config),
                          reason=mapping.stage.reason, actor=f"import:{mapping.name}")
    report = ImportReport()
    progress.start(f"importing ({mapping.name})", total)
    try:
        chunk: list[SourceRow] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= chunk_size:
                _write_chunk(uow_factory, ctx, mapping, target, chunk, report)
                progress.advance(len(chunk))
                chunk = []
        if chunk:
            _write_chunk(uow_factory, ctx, mapping, target, chunk, report)
            progress.advance(len(chunk))
    finally:
        progress.finish()
    report.bad.sort(key=lambda issue: issue.line)
    report.skipped.sort(key=lambda issue: issue.line)
    return report


def _write_chunk(uow_factory: UnitOfWorkFactory, ctx: Context, mapping: ImportMapping,
                 target: ImportTarget, chunk: list[SourceRow], report: ImportReport) -> None:
    now = ctx.clock.now()
    tz = zone(mapping.timezone)
    plans: list[RowPlan] = []
    for row in chunk:
        report.rows += 1
        try:
            plans.append(plan_row(mapping, row, now=now, tz=tz))
        except LeadflowError as exc:
            report.bad.append(RowIssue(row.line, exc.message, exc.field))
    with uow_factory() as uow:
        _write_plans(uow, ctx, target, plans, report, now=now)
        uow.commit()


def _write_plans(uow: UnitOfWork, ctx: Context, target: ImportTarget, plans: list[RowPlan],
                 report: ImportReport, *, now: float) -> None:
    plans = _not_erased(uow, ctx, plans, report)
    known = _known_contacts(uow, plans)
    contacts = {c.id: c for c in uow.contacts.get_many(sorted(set(known.values())))}
    stored = uow.events.existing_messages(
        [e.message_id for p in plans for e in p.events if e.message_id])
    batch: list[RowPlan] = []
    one_by_one: list[RowPlan] = []
    seen: set[tuple[str, str]] = set()
    for plan in plans:
        keys = {(plan.identity_kind, plan.identity_value)}
        if plan.contact.email:
            keys.add(("email", plan.contact.email))
        repeated = bool(keys & seen)
        seen |= keys
        contact = contacts.get(known.get(plan.line))
        if contact is not None and not repeated and _unchanged(ctx, contact, plan, target,
                                                               stored, now=now):
            report.unchanged += 1
        elif contact is None and not repeated and plan.contact.account is None:
            batch.append(plan)
        else:
            one_by_one.append(plan)
    if batch:
        try:
            with uow.savepoint():
                events = create_batch(uow=uow, ctx=ctx, plans=batch, target=target,
                                      stored=stored, now=now)
        except Exception as exc:  # any failure: redone row by row, which names each one
            log.info("import chunk redone row by row", extra={
                "rows": len(batch), "error": f"{type(exc).__name__}: {exc}"})
            one_by_one = sorted(batch + one_by_one, key=lambda p: p.line)
        else:
            report.imported += len(batch)
            report.events += events
    for plan in one_by_one:
        try:
            with uow.savepoint():
                status, events = write_row(uow=uow, ctx=ctx, plan=plan, target=target, now=now)
        except Suppressed as exc:
            report.skipped.append(RowIssue(plan.line, exc.message))
        except LeadflowError as exc:
            report.bad.append(RowIssue(plan.line, exc.message, exc.field))
        else:
            setattr(report, status, getattr(report, status) + 1)
            report.events += events


def _not_erased(uow: UnitOfWork, ctx: Context, plans: list[RowPlan], report: ImportReport
                ) -> list[RowPlan]:
    salt = ctx.suppression_salt
    every = [h for p in plans for h in identity_hashes(p, salt)]
    if not uow.suppressions.is_suppressed(every):
        return plans
    kept = []
    for plan in plans:
        if uow.suppressions.is_suppressed(identity_hashes(plan, salt)):
            report.skipped.append(RowIssue(
                plan.line, "this person asked to be forgotten; the row is not imported"))
        else:
            kept.append(plan)
    return kept


def _known_contacts(uow: UnitOfWork, plans: list[RowPlan]) -> dict[int, int]:
    """The contact id of each row (by line) whose person is already known."""
    out: dict[int, int] = {}
    by_kind: dict[str, list[RowPlan]] = {}
    for plan in plans:
        by_kind.setdefault(plan.identity_kind, []).append(plan)
    for kind, group in by_kind.items():
        found = uow.contacts.find_identities(kind, [p.identity_value for p in group])
        out.update({p.line: found[p.identity_value] for p in group if p.identity_value in found})
    rest = [p for p in plans if p.line not in out and p.contact.email
            and p.identity_kind != "email"]
    if rest:
        found = uow.contacts.find_identities("email", [p.contact.email or "" for p in rest])
        out.update({p.line: found[p.contact.email or ""] for p in rest
                    if p.contact.email in found})
    return out


def _unchanged(ctx: Context, contact: Contact, plan: RowPlan, target: ImportTarget,
               stored: set[str], *, now: float) -> bool:
    """Would the row change nothing? (It may change the loaded contact: it is thrown away.)"""
    if plan.contact.account is not None or ctx.config.is_erased(contact.stage):
        return False
    if any(e.message_id not in stored for e in plan.events):
        return False
    return not apply_row(contact, plan, target, ctx.config, now=now)

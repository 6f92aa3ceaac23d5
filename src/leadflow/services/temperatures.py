"""Temperatures that the clock alone changes (a demo request growing old) are refreshed here."""

from __future__ import annotations

from collections.abc import Callable

from leadflow.domain.lifecycle import refresh_temperature
from leadflow.domain.ports import UnitOfWork
from leadflow.services.common import record_temperature_change
from leadflow.services.context import Context


def refresh_expired_temperatures(
    *, uow_factory: Callable[[], UnitOfWork], ctx: Context, batch: int = 500,
) -> int:
    """Recompute every temperature whose reading expired; return how many were refreshed.

    Each change is a ``temperature.changed`` webhook message, written with the change.
    """
    done = 0
    now = ctx.clock.now()
    while True:
        with uow_factory() as uow:
            ids = uow.contacts.expired_temperature_ids(now, batch)
            if not ids:
                return done
            for contact in uow.contacts.get_many(ids):
                before = contact.temperature
                if refresh_temperature(contact, ctx.config, now=now):
                    record_temperature_change(uow, contact, before=before, at=now)
                if contact.temperature_until is not None and contact.temperature_until <= now:
                    # A reading that ends right now (a score exactly at a threshold) is read
                    # again a moment later, not kept for ever.
                    contact.temperature_until = now + 1.0
                uow.contacts.save(contact)
            uow.commit()
        done += len(ids)

from __future__ import annotations

from leadflow.bootstrap import App
from leadflow.services.contacts import ContactIn, create_contact


def test_create_contact_enters_at_entry_stage(app: App) -> None:
    c = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(email="A@Example.com"))
    assert c.stage == "suspect"
    assert c.email == "a@example.com"

"""Accounts: found again without a domain, and a change reaches every contact's fit."""

from __future__ import annotations

from sqlalchemy import func, select

from leadflow.adapters.db import tables as t
from leadflow.bootstrap import App
from leadflow.services.contacts import AccountIn, ContactIn, create_contact, update_contact


def _accounts(app: App) -> int:
    with app.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.accounts)).scalar_one())


def test_an_account_without_a_domain_is_not_created_twice(app: App) -> None:
    ann = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(
        email="ann@mail.example", account=AccountIn(name="Acme")))
    assert ann.id is not None
    for employees in (120, 150):
        update_contact(uow=app.uow(), ctx=app.ctx, contact_id=ann.id, changes={},
                       account=AccountIn(name="Acme", employees=employees))
    create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(
        email="bob@mail.example", account=AccountIn(name="ACME")))
    assert _accounts(app) == 1


def test_an_account_change_refits_its_other_contacts(app: App) -> None:
    def person(email: str) -> int:
        c = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(
            email=email, seniority="director", country="FR",
            account=AccountIn(name="Globex", domain="globex.example", industry="education")))
        assert c.id is not None
        return c.id

    ann, bob = person("ann@globex.example"), person("bob@globex.example")
    with app.uow() as uow:
        before = uow.contacts.get(bob)
    assert before is not None
    update_contact(uow=app.uow(), ctx=app.ctx, contact_id=ann, changes={},
                   account=AccountIn(name="Globex", domain="globex.example",
                                     industry="software", employees=400))
    with app.uow() as uow:
        after = uow.contacts.get(bob)
    assert after is not None
    assert after.fit.score > before.fit.score
    assert after.fit.grade == "A"


def test_a_new_contact_that_updates_its_account_refits_the_others(app: App) -> None:
    ann = create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(
        email="ann@initech.example", seniority="director", country="FR",
        account=AccountIn(name="Initech", domain="initech.example")))
    create_contact(uow=app.uow(), ctx=app.ctx, data=ContactIn(
        email="bob@initech.example", account=AccountIn(
            name="Initech", domain="initech.example", industry="software", employees=400)))
    with app.uow() as uow:
        after = uow.contacts.get(ann.id or 0)
    assert after is not None
    assert after.fit.grade == "A"

"""The contact page's predicted conversion: the active model's probability and the contact's
own reasons, in English and French; an honest empty state otherwise."""

from __future__ import annotations

import re
from typing import Any

from leadflow.adapters.ml.store import SqlPredictiveStore
from leadflow.bootstrap import App
from leadflow.domain.ports import NullProgress
from leadflow.services import predictive
from tests.conftest import FakeClock
from tests.integration.test_predictive import MODEL, generate, train, with_model
from tests.web.conftest import People
from tests.web.test_contact_page import contact, event


def _predicted(html: str) -> str:
    return html[html.index('id="predicted"'):html.index('id="qualification"')]


def test_the_page_shows_the_probability_and_the_contacts_own_reasons(
        web: Any, app: App, clock: FakeClock, people: People) -> None:
    with_model(app, **MODEL)
    generate(app, clock, n=160)
    lead = contact(app, people.rep, "lea@acme.example")
    event(app, lead, "email_replied", ts=clock.now() - 3600)
    event(app, lead, "form_submitted", url="/contact")
    suspect = contact(app, people.rep, "sam@acme.example")
    client = web().login(people.rep)
    assert "No predictive model is active." in _predicted(client.get(f"/contacts/{lead}").text)

    version = train(app)
    predictive.activate(store=SqlPredictiveStore(app.engine), ctx=app.ctx,
                        version_id=version.id, progress=NullProgress())
    shown = _predicted(client.get(f"/contacts/{lead}").text)
    stored = predictive.contact_prediction(store=SqlPredictiveStore(app.engine), ctx=app.ctx,
                                           contact_id=lead).prediction
    assert stored is not None
    assert f'data-probability="{stored.probability}"' in shown
    assert re.search(r"\d+\.\d\xa0%", shown)
    assert f"Chance of reaching Customer within 90 days, by model version {version.id}" \
        in shown
    features = re.findall(r'data-feature="([^"]+)"', shown)
    assert features == [r["feature"] for r in stored.reasons]
    assert "contact.seniority" in features
    assert "Seniority" in shown  # in words, with the value and its typical one
    assert "director" in shown
    assert "typical" in shown
    assert "Not scored by the active model." in _predicted(
        client.get(f"/contacts/{suspect}").text)

    client.post("/language", {"lang": "fr", "next": f"/contacts/{lead}"})
    french = _predicted(client.get(f"/contacts/{lead}").text)
    assert "Conversion prédite" in french
    assert "Niveau hiérarchique" in french

"""Login, logout, sessions, CSRF and languages of the web app."""

from __future__ import annotations

from typing import Any

from leadflow.bootstrap import App
from leadflow.services.users import update_user
from tests.web.conftest import PASSWORD, People


def test_pages_need_a_login_and_come_back_after_it(web: Any, people: People) -> None:
    client = web()
    answer = client.get("/?week=3", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/%3Fweek%3D3"
    client.get(answer.headers["location"])
    logged = client.post("/login", {"email": people.marketer.email, "password": PASSWORD,
                                    "next": "/?week=3"})
    assert logged.status_code == 303
    assert logged.headers["location"] == "/?week=3"


def test_a_wrong_password_is_refused_without_telling_which_part(web: Any,
                                                                 people: People) -> None:
    client = web()
    client.get("/login")
    wrong = client.post("/login", {"email": people.rep.email, "password": "nope nope nope"})
    unknown = client.post("/login", {"email": "nobody@leadflow.test", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong email or password." in wrong.text
    assert "Wrong email or password." in unknown.text
    assert client.get("/", follow_redirects=False).status_code == 303


def test_login_is_rate_limited(web: Any, people: People) -> None:
    client = web()
    client.get("/login")
    answers = [client.post("/login", {"email": people.rep.email, "password": "bad password!"})
               for _ in range(7)]
    assert answers[-1].status_code == 429
    assert "Too many attempts" in answers[-1].text


def test_a_form_without_the_csrf_token_is_refused(web: Any, people: People) -> None:
    client = web().login(people.admin)
    refused = client.post("/logout", csrf=False)
    assert refused.status_code == 403
    assert "reload the page" in refused.text
    forged = client.post("/logout", {"csrf_token": "x" * 43})
    assert forged.status_code == 403
    assert client.get("/").status_code == 200  # still logged in


def test_a_login_form_from_elsewhere_is_refused(web: Any, people: People) -> None:
    client = web()
    answer = client.post("/login", {"email": people.admin.email, "password": PASSWORD},
                         csrf=False)
    assert answer.status_code == 403


def test_logout_ends_the_session(web: Any, people: People) -> None:
    client = web().login(people.rep)
    assert client.post("/logout").headers["location"] == "/login"
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_deactivated_user_is_logged_out_at_the_next_click(web: Any, app: App,
                                                            people: People) -> None:
    client = web().login(people.rep)
    update_user(uow=app.uow(), ctx=app.ctx, ref=people.rep.id, changes={"active": False})
    assert client.get("/", follow_redirects=False).status_code == 303
    client.get("/login")
    again = client.post("/login", {"email": people.rep.email, "password": PASSWORD})
    assert again.status_code == 401


def test_after_login_goes_only_to_this_site(web: Any, people: People) -> None:
    client = web()
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        client.get("/login")
        answer = client.post("/login", {"email": people.admin.email, "password": PASSWORD,
                                        "next": target})
        assert answer.headers["location"] == "/", target
        client.post("/logout")


def test_the_language_follows_the_browser_then_the_choice(web: Any, people: People) -> None:
    client = web()
    french = client.get("/login", headers={"accept": "text/html",
                                           "accept-language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert 'lang="fr"' in french.text
    assert "Mot de passe" in french.text
    client.login(people.marketer)
    client.post("/language", {"lang": "fr", "next": "/"})
    assert "Tableau de bord" in client.get("/").text
    client.post("/language", {"lang": "en", "next": "/"})
    assert "Dashboard" in client.get("/").text


def test_an_api_path_still_answers_json(web: Any, people: People) -> None:
    client = web().login(people.admin)
    answer = client.client.get("/api/v1/contacts/999")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthenticated"


def test_an_unknown_page_is_an_html_404(web: Any, people: People) -> None:
    client = web().login(people.admin)
    answer = client.get("/no-such-page")
    assert answer.status_code == 404
    assert "There is no such page." in answer.text


def test_switching_language_on_a_page_answering_a_post_comes_back_to_the_form(
        web: Any, people: People) -> None:
    client = web().login(people.admin)
    client.get("/tasks?status=open")
    answer = client.post("/tasks/999999/complete", {"outcome": "x"},
                         headers={"accept": "text/html",
                                  "referer": "http://testserver/tasks?status=open"})
    assert answer.status_code == 404
    assert 'name="next" value="/tasks?status=open"' in answer.text
    elsewhere = client.post("/tasks/999999/complete", {"outcome": "x"},
                            headers={"accept": "text/html", "referer": "https://evil.example/"})
    assert 'name="next" value="/"' in elsewhere.text

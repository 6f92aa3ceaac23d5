"""Users: add, list, change (role, team, out of office, weight, territories), passwords."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer

from leadflow.domain.choices import day_start
from leadflow.domain.errors import InvalidInput
from leadflow.domain.users import OPERATOR, ROLE_SCOPE, ROLES
from leadflow.entrypoints.cli.base import app, friendly_errors, get_app
from leadflow.entrypoints.cli.output import console, print_json, table, when
from leadflow.services import api_keys, users

users_app = typer.Typer(help="Users and their roles: admin, marketer, sales_manager, "
                        "sales_rep.", no_args_is_help=True)
app.add_typer(users_app, name="users")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
UserRef = Annotated[str, typer.Argument(help="User email or id")]


@users_app.command("add")
@friendly_errors
def users_add(
    email: Annotated[str, typer.Argument(help="Login and where notifications go")],
    name: Annotated[str, typer.Option("--name", "-n", help="Full name")],
    role: Annotated[str, typer.Option("--role", "-r", help=", ".join(ROLES))],
    team: Annotated[str | None, typer.Option(help="Team (a manager sees their team)")] = None,
    weight: Annotated[float, typer.Option(help="Capacity weight in round robin")] = 1.0,
    territory: Annotated[list[str] | None, typer.Option(
        "--territory", "-t", help="FR or FR:Bretagne (repeat)")] = None,
    password: Annotated[bool, typer.Option(
        "--password/--no-password", help="Ask for a password (web login and tokens)")] = True,
) -> None:
    """Add a user."""
    secret = typer.prompt("password", hide_input=True, confirmation_prompt=True) \
        if password else None
    a = get_app()
    user = users.create_user(uow=a.uow(), ctx=a.ctx, email=email, name=name, role=role,
                             password=secret, team=team, weight=weight,
                             territories=territory or [])
    console.print(f"added user {user.id}: {user.email} ({user.role})")


def _row(u: Any) -> dict[str, Any]:
    return {**asdict(u), "territories": list(u.territories)}


@users_app.command("list")
@friendly_errors
def users_list(as_json: JsonOpt = False) -> None:
    """Every user, with role, team, weight, territories and who is out of office."""
    a = get_app()
    found = users.list_users(uow=a.reader(), principal=OPERATOR)
    if as_json:
        print_json([_row(u) for u in found])
        return
    now = a.clock.now()
    table("users", ["id", "email", "name", "role", "team", "weight", "territories",
                    "assigned", "status"],
          [[u.id, u.email, u.name, u.role, u.team, f"{u.weight:g}", ", ".join(u.territories),
            u.assigned, "inactive" if not u.active else
            f"away until {when(u.away_until)}" if u.away(now) else "active"] for u in found])


@users_app.command("set")
@friendly_errors
def users_set(
    user: UserRef,
    role: Annotated[str | None, typer.Option(help=", ".join(ROLES))] = None,
    team: Annotated[str | None, typer.Option(help="Team ('' for none)")] = None,
    weight: Annotated[float | None, typer.Option(help="Capacity weight")] = None,
    territory: Annotated[list[str] | None, typer.Option(
        "--territory", "-t", help="Replace territories (repeat; '' for none)")] = None,
    away_until: Annotated[str | None, typer.Option(
        help="Out of office until this date (YYYY-MM-DD): gets no new prospects")] = None,
    back: Annotated[bool, typer.Option("--back", help="Back in the office")] = False,
    active: Annotated[bool | None, typer.Option("--active/--inactive")] = None,
) -> None:
    """Change a user: role, team, capacity, territories, out of office, active."""
    changes: dict[str, Any] = {}
    if role is not None:
        changes["role"] = role
    if team is not None:
        changes["team"] = team or None
    if weight is not None:
        changes["weight"] = weight
    if territory is not None:
        changes["territories"] = [t for t in territory if t.strip()]
    if away_until is not None:
        changes["away_until"] = day_start(away_until, field="away-until")
    if back:
        changes["away_until"] = None
    if active is not None:
        changes["active"] = active
    if not changes:
        raise InvalidInput("nothing to change: give an option", field="user")
    a = get_app()
    updated = users.update_user(uow=a.uow(), ctx=a.ctx, ref=user, changes=changes)
    console.print(f"updated user {updated.id}: {updated.email}")


@users_app.command("password")
@friendly_errors
def users_password(user: UserRef) -> None:
    """Set a user's password (asked twice, never echoed)."""
    secret = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    a = get_app()
    users.set_password(uow=a.uow(), ctx=a.ctx, ref=user, password=secret)
    console.print("password changed")


@users_app.command("token")
@friendly_errors
def users_token(
    user: UserRef,
    name: Annotated[str, typer.Option("--name", help="What the token is for")] = "personal",
    scope: Annotated[str | None, typer.Option(
        "--scope", "-s", help="read, write or admin (default: what the role allows)")] = None,
) -> None:
    """A personal API token that acts as the user (printed once)."""
    a = get_app()
    found = users.get_user(uow=a.reader(), ref=user)
    made = api_keys.create_api_key(uow=a.uow(), ctx=a.ctx, name=name, kind="secret",
                                   scopes=[scope or ROLE_SCOPE[found.role]], user=found.id)
    console.print(f"token for {found.email} (shown once, keep it safe):")
    print(made.token)

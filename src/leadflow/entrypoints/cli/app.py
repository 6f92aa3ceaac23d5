"""`leadflow` command line: every command group registered on one Typer app."""

from __future__ import annotations

from leadflow.entrypoints.cli import (  # noqa: F401  (each module registers its commands)
    commands_admin,
    commands_analytics,
    commands_backtest,
    commands_contacts,
    commands_content,
    commands_deals,
    commands_events,
    commands_forms,
    commands_import,
    commands_model,
    commands_nurture,
    commands_predictive,
    commands_sales,
    commands_server,
    commands_users,
)
from leadflow.entrypoints.cli.base import app


def main() -> None:
    app()

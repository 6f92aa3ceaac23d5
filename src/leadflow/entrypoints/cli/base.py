"""The Typer application, the App it works on, and how errors are shown."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from rich.text import Text

from leadflow.bootstrap import App
from leadflow.config import Settings
from leadflow.domain.errors import ConfigInvalid, InvalidInput, LeadflowError
from leadflow.entrypoints.cli.output import err_console

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(help="leadflow: the lead lifecycle system.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
_state: dict[str, App] = {}


def get_app() -> App:
    if "app" not in _state:
        try:
            settings = Settings()
        except ValidationError as exc:
            first = exc.errors()[0]
            name = "_".join(str(p) for p in first["loc"]).upper()
            where = f"LEADFLOW_{name}" if name else "settings"
            raise InvalidInput(first["msg"].removeprefix("Value error, "),
                               field=where) from None
        _state["app"] = App(settings)
    return _state["app"]


def set_app(instance: App | None) -> None:
    """Tests inject an App (settings, fake clock); None forgets it."""
    _state.pop("app", None)
    if instance is not None:
        _state["app"] = instance


def friendly_errors(fn: F) -> F:
    """Show a leadflow error as one clear message (exit 2), never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigInvalid as exc:
            err_console.print(f"[red]configuration error[/red] {exc.message}", highlight=False,
                              soft_wrap=True)
            raise typer.Exit(2) from None
        except LeadflowError as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if type(exc).__module__.split(".")[0] in ("typer", "click"):
                raise
            # Last resort: a bug or an unforeseen failure is still one line, not a traceback.
            if os.environ.get("LEADFLOW_DEBUG"):
                raise
            message = Text("unexpected error:", style="red")
            message.append(f" {type(exc).__name__}: {exc} (set LEADFLOW_DEBUG=1 to see where)")
            err_console.print(message, highlight=False, soft_wrap=True)
            raise typer.Exit(3) from None

    return wrapper  # type: ignore[return-value]

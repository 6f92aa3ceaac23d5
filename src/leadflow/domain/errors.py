"""The one error tree of leadflow.

Every error a user can meet derives from ``LeadflowError`` and carries a stable ``code``;
entrypoints map the classes to exit codes (CLI) and HTTP statuses (API):

- ``InvalidInput`` (400/422): a value is wrong; ``field`` names it, ``line`` locates it in a file.
- ``ConfigInvalid`` (422): a configuration file has problems; each one names its location.
- ``NotFound`` (404): a referenced contact, account or event does not exist; ``Merged`` (404)
  when the contact was merged into another (its ``survivor_id`` says which).
- ``Conflict`` (409): the request contradicts the current state (duplicate email...).
- ``MoveNotAllowed`` (409): a stage move breaks the pipeline rules.
- ``Suppressed`` (409): the identity belongs to an erased contact and may not come back.
- ``ConcurrentChange`` (409): another transaction changed the same thing at the same moment;
  the same request again will go through (tracking retries it itself).
- ``Unauthenticated`` (401): no key or token, or one that is unknown or revoked.
- ``Forbidden`` (403): the key or user may not do this.
- ``TooLarge`` (413 in the REST API; 400 on the tracking API, as Segment answers): a body
  over its size limit.
- ``Unavailable`` (503): the database cannot be reached or opened.
- ``Undeliverable`` (422): the mail server refused the recipient for good (a hard bounce).
- ``DeliveryUnknown`` (502): the connection broke after the message was handed over: the
  server may have it, so it is not sent again.
"""

from __future__ import annotations

from dataclasses import dataclass


class LeadflowError(Exception):
    code = "error"

    def __init__(self, message: str, *, field: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.line = line

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field:
            where.append(self.field)
        prefix = f"{', '.join(where)}: " if where else ""
        return f"{prefix}{self.message}"


class InvalidInput(LeadflowError):
    code = "invalid_input"


@dataclass(frozen=True)
class ConfigProblem:
    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class ConfigInvalid(LeadflowError):
    code = "config_invalid"

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


class NotFound(LeadflowError):
    code = "not_found"


class Merged(NotFound):
    """The contact was merged into another one, which holds its history now."""

    code = "merged"

    def __init__(self, contact_id: int, survivor_id: int) -> None:
        super().__init__(f"contact {contact_id} was merged into contact {survivor_id}",
                         field="contact_id")
        self.survivor_id = survivor_id


class Conflict(LeadflowError):
    code = "conflict"


class MoveNotAllowed(LeadflowError):
    code = "move_not_allowed"


class Suppressed(LeadflowError):
    code = "suppressed"


class ConcurrentChange(Conflict):
    code = "concurrent_change"


class Unavailable(LeadflowError):
    code = "unavailable"


class Undeliverable(LeadflowError):
    code = "undeliverable"


class DeliveryUnknown(LeadflowError):
    code = "delivery_unknown"


class Unauthenticated(LeadflowError):
    code = "unauthenticated"


class Forbidden(LeadflowError):
    code = "forbidden"


class TooLarge(LeadflowError):
    code = "too_large"

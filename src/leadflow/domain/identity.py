"""Identity rules: normalising emails and hashing erased identities for the suppression list."""

from __future__ import annotations

import hashlib
import re

from leadflow.domain.errors import InvalidInput

EMAIL_RE = re.compile(r"^[^@\s<>(),;:\"\[\]\x00-\x1f\x7f]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


def normalize_email(value: str | None, *, field: str = "email") -> str | None:
    if value is None:
        return None
    email = value.strip().lower()
    if not email:
        return None
    if len(email) > 320 or not EMAIL_RE.match(email):
        raise InvalidInput(f"not a valid email address: {value!r}", field=field)
    return email


def suppression_hash(kind: str, value: str, salt: str) -> str:
    normalized = value.strip().lower()
    return hashlib.sha256(f"{salt}:{kind}:{normalized}".encode()).hexdigest()

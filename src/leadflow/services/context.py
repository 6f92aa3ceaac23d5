"""What every use case needs besides its unit of work."""

from __future__ import annotations

from dataclasses import dataclass

from leadflow.domain.config import LifecycleConfig
from leadflow.domain.ports import Clock


@dataclass(frozen=True)
class Context:
    config: LifecycleConfig
    clock: Clock
    suppression_salt: str

"""The one settings object. Every value can be set by an environment variable LEADFLOW_<NAME>."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_", env_file=None, extra="ignore")

    data_dir: Path = Field(default=Path("./leadflow-data"),
                           description="Where the embedded SQLite file lives")
    database_url: str | None = Field(default=None,
                                     description="SQLAlchemy URL; default: SQLite in data_dir")
    pipeline_path: Path | None = Field(default=None,
                                       description="Lifecycle YAML; default: the shipped one")
    suppression_salt: str = Field(default="leadflow-suppression",
                                  description="Salt for hashes of erased identities")
    rescore_chunk_contacts: int = Field(default=250_000, gt=0)

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'leadflow.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

"""The one settings object. Every value can be set by an environment variable LEADFLOW_<NAME>."""

from __future__ import annotations

import contextlib
import os
import secrets
from functools import cached_property
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_", env_file=None, extra="ignore")

    data_dir: Path = Field(default=Path("./leadflow-data"),
                           description="Where the embedded SQLite file lives")
    database_url: str | None = Field(default=None,
                                     description="SQLAlchemy URL; default: SQLite in data_dir")
    pipeline_path: Path | None = Field(
        default=None, description="Lifecycle YAML, loaded at start and saved by the settings "
                                  "page; default: data_dir/pipeline.yaml once that exists "
                                  "(the page saves there), else the shipped one")
    suppression_salt: str = Field(default="leadflow-suppression",
                                  description="Salt for hashes of erased identities")
    rescore_chunk_contacts: int = Field(default=250_000, gt=0)
    redis_url: str | None = Field(default=None,
                                  description="Job queue on Redis; default: SQLite in data_dir")
    queue_name: str = Field(default="leadflow", min_length=1,
                            description="Queue name: installs sharing a Redis keep apart")
    host: str = Field(default="127.0.0.1", description="Address `leadflow serve` listens on")
    port: int = Field(default=8000, ge=1, le=65535)
    cors_origins: list[str] = Field(default=["*"],
                                    description="Origins allowed to call the tracking API")
    api_max_body_bytes: int = Field(default=1_048_576, gt=0,
                                    description="Largest REST request body (tracking: 500 KB)")
    tracking_rate_limit: float = Field(
        default=200.0, ge=0,
        description="Tracking requests per second per write key (burst: 5 s worth); 0: off")
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_retry_seconds: float = Field(default=10.0, gt=0,
                                         description="First retry delay; doubles each time")
    webhook_lease_seconds: float = Field(
        default=60.0, gt=0,
        description="A delivery handed to a worker is handed out again only after this")
    relay_interval_seconds: float = Field(default=0.5, gt=0)
    log_json: bool = Field(default=True, description="Structured JSON logs from serve/worker")
    smtp_host: str | None = Field(default=None,
                                  description="SMTP server; default: a file outbox in data_dir")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = Field(default="leadflow@localhost",
                           description="Sender of notifications (personal emails: the rep)")
    inbound_address: str | None = Field(
        default=None, description="Address reps BCC or forward emails to, to log them")

    secret_key: str | None = Field(
        default=None, description="Signs links in email and sessions; default: a random key "
                                  "kept in data_dir/secret.key (set it when several machines "
                                  "serve one install)")
    public_url: str = Field(default="http://127.0.0.1:8000",
                            description="Where mailboxes reach leadflow: links in email")
    company_name: str = Field(default="leadflow", description="Signs marketing email")
    mail_batch_size: int = Field(default=200, gt=0, description="Emails one send job claims")
    mail_interval_seconds: float = Field(default=10.0, gt=0,
                                         description="How often the worker sends queued email")

    @model_validator(mode="after")
    def _lease_covers_a_post(self) -> Settings:
        if self.webhook_timeout_seconds >= self.webhook_lease_seconds:
            raise ValueError("webhook_lease_seconds must be longer than "
                             "webhook_timeout_seconds: a delivery is handed out again only "
                             "when its post is over")
        return self

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'leadflow.db').resolve()}"

    @cached_property
    def signing_key(self) -> bytes:
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".secret.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            tmp.write_text(secrets.token_urlsafe(48))
            tmp.chmod(0o600)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # the first process to create it wins; others read it
            tmp.unlink(missing_ok=True)
        return path.read_text().strip().encode()

    @property
    def pipeline_file(self) -> Path:
        """Where the lifecycle configuration is saved: pipeline_path, else
        data_dir/pipeline.yaml."""
        return self.pipeline_path if self.pipeline_path is not None \
            else self.data_dir / "pipeline.yaml"

    @property
    def pipeline_in_use(self) -> Path | None:
        """The lifecycle YAML to load: pipeline_path when set, else data_dir/pipeline.yaml when
        it exists; None: the one shipped with leadflow."""
        if self.pipeline_path is not None:
            return self.pipeline_path
        saved = self.data_dir / "pipeline.yaml"
        return saved if saved.is_file() else None

    @property
    def queue_path(self) -> Path:
        return (self.data_dir / "queue.db").resolve()

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

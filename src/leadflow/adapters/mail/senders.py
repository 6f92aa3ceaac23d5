"""Sending email: over SMTP when configured, else into a file outbox (one .eml per message)
under the data directory, where it can be read."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path

from leadflow.config import Settings
from leadflow.domain.errors import Unavailable, Undeliverable
from leadflow.domain.ports import Mailer, OutgoingMail


def build_message(mail: OutgoingMail) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = mail.sender
    msg["To"] = mail.to
    msg["Subject"] = mail.subject
    msg["Message-ID"] = mail.message_id
    if mail.reply_to:
        msg["Reply-To"] = mail.reply_to
    if mail.bcc:
        msg["Bcc"] = mail.bcc
    for name, value in mail.headers.items():
        msg[name] = value
    msg.set_content(mail.text)
    if mail.html:
        msg.add_alternative(mail.html, subtype="html")
    return msg


class SmtpMailer:
    def __init__(self, *, host: str, port: int, username: str | None, password: str | None,
                 starttls: bool, timeout: float = 30.0) -> None:
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.starttls, self.timeout = starttls, timeout

    def forget(self, message_ids: Sequence[str]) -> None:
        del message_ids  # sent messages are the relay's and the recipient's now

    def send(self, mail: OutgoingMail) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(build_message(mail))
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if codes and all(500 <= code < 600 for code in codes):
                raise Undeliverable(f"the mail server refused the recipient: {codes[0]}",
                                    field="email") from None
            raise Unavailable(f"the mail server deferred the recipient: {codes}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise Unavailable(f"cannot send email through {self.host}:{self.port}: "
                              f"{type(exc).__name__}: {exc}") from None


def _file_name(message_id: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in message_id.strip("<>"))


class FileMailer:
    """Writes each message to ``<dir>/<message id>.eml`` (atomically: a reader never sees
    half a message)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, mail: OutgoingMail) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = _file_name(mail.message_id)
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(bytes(build_message(mail)))
        tmp.replace(self.directory / f"{name}.eml")

    def forget(self, message_ids: Sequence[str]) -> None:
        for message_id in message_ids:
            (self.directory / f"{_file_name(message_id)}.eml").unlink(missing_ok=True)


def make_mailer(settings: Settings) -> Mailer:
    if settings.smtp_host:
        return SmtpMailer(host=settings.smtp_host, port=settings.smtp_port,
                          username=settings.smtp_username, password=settings.smtp_password,
                          starttls=settings.smtp_starttls)
    return FileMailer(settings.data_dir / "mail-outbox")

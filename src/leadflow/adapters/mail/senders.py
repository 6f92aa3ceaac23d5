"""Sending email: over SMTP when configured, else into a file outbox (one .eml per message)
under the data directory, where it can be read."""

from __future__ import annotations

import smtplib
import ssl
import threading
import time
import weakref
from collections.abc import Sequence
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from leadflow.config import Settings
from leadflow.domain.errors import DeliveryUnknown, Unavailable, Undeliverable
from leadflow.domain.ports import Mailer, OutgoingMail


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, except that it makes each header name's class once:
    the stock one builds a new class for every header it stores, which was half the time
    of building a message. Same headers, same checks, same bytes."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


POLICY = policy.default.clone(header_factory=_HeaderClasses())


def build_message(mail: OutgoingMail) -> EmailMessage:
    msg = EmailMessage(policy=POLICY)
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


class _Connection(smtplib.SMTP):
    """One SMTP connection that knows whether the message being sent got as far as DATA:
    up to there nothing was handed over, so sending it again cannot deliver it twice."""

    data_begun = False
    last_used = 0.0

    def data(self, msg: Any) -> tuple[int, bytes]:
        self.data_begun = True
        return super().data(msg)


def _dropped(exc: Exception) -> bool:
    """The server closed the connection (or said it is about to: 421)."""
    return isinstance(exc, smtplib.SMTPServerDisconnected) or (
        isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code == 421)


def _quit_all(idle: list[_Connection], lock: threading.Lock) -> None:
    with lock:
        connections, idle[:] = list(idle), []
    for connection in connections:
        try:
            connection.quit()
        except (OSError, smtplib.SMTPException):
            connection.close()


class SmtpMailer:
    """Sends over SMTP, keeping connections open between messages: each sending thread takes
    an idle connection (or opens one) and gives it back afterwards, so threads sending at once
    never share one. A kept connection the server dropped meanwhile is replaced once, unless
    the message got as far as DATA on it. ``close()`` (also run when the mailer is garbage
    collected) quits the idle connections; the mailer stays usable."""

    def __init__(self, *, host: str, port: int, username: str | None, password: str | None,
                 starttls: bool, timeout: float = 30.0, max_idle: int = 8,
                 idle_seconds: float = 60.0) -> None:
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.starttls, self.timeout = starttls, timeout
        self.max_idle, self.idle_seconds = max_idle, idle_seconds
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _quit_all, self._idle, self._lock)

    def forget(self, message_ids: Sequence[str]) -> None:
        del message_ids  # sent messages are the relay's and the recipient's now

    def close(self) -> None:
        _quit_all(self._idle, self._lock)

    def __enter__(self) -> SmtpMailer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> _Connection:
        connection = _Connection(self.host, self.port, timeout=self.timeout)
        try:
            if self.starttls:
                connection.starttls(context=ssl.create_default_context())
            if self.username:
                connection.login(self.username, self.password or "")
        except BaseException:
            connection.close()
            raise
        return connection

    def _take(self) -> tuple[_Connection, bool]:
        """An idle connection (True) or a new one (False)."""
        stale: list[_Connection] = []
        taken = None
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if time.monotonic() - connection.last_used < self.idle_seconds:
                    taken = connection
                    break
                stale.append(connection)  # the server has likely timed it out
        for connection in stale:
            connection.close()
        return (taken, True) if taken is not None else (self._open(), False)

    def _give_back(self, connection: _Connection) -> None:
        connection.last_used = time.monotonic()
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append(connection)
                return
        try:
            connection.quit()
        except (OSError, smtplib.SMTPException):
            connection.close()

    @staticmethod
    def _transmit(connection: _Connection, message: EmailMessage) -> None:
        connection.data_begun = False
        connection.send_message(message)

    def send(self, mail: OutgoingMail) -> None:
        message = build_message(mail)
        connection: _Connection | None = None
        try:
            connection, reused = self._take()
            try:
                self._transmit(connection, message)
            except (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException) as exc:
                if not reused or connection.data_begun or not _dropped(exc):
                    raise
                connection.close()  # dropped while idle: once more on a new connection
                connection = self._open()
                self._transmit(connection, message)
        except smtplib.SMTPRecipientsRefused as exc:
            if connection is not None and connection.sock is not None:
                self._give_back(connection)  # smtplib reset the transaction: still good
            codes = [code for code, _ in exc.recipients.values()]
            if codes and all(500 <= code < 600 for code in codes):
                raise Undeliverable(f"the mail server refused the recipient: {codes[0]}",
                                    field="email") from None
            raise Unavailable(f"the mail server deferred the recipient: {codes}") from None
        except (OSError, smtplib.SMTPException) as exc:
            if connection is not None:
                connection.close()
                if connection.data_begun:
                    raise DeliveryUnknown(
                        f"the connection to {self.host}:{self.port} broke after the message "
                        f"was handed over ({type(exc).__name__}); it may have been delivered"
                    ) from None
            raise Unavailable(f"cannot send email through {self.host}:{self.port}: "
                              f"{type(exc).__name__}: {exc}") from None
        except BaseException:
            if connection is not None:
                connection.close()
            raise
        assert connection is not None
        self._give_back(connection)


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

"""Signed links in sent email: the open pixel, click redirects, one-click unsubscribe and the
profile form. A link names a message (or a contact) by number and carries an HMAC of what it
does, so nobody can forge a click, unsubscribe someone else, or see whose it is."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote, urlencode


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class LinkSigner:
    key: bytes
    base_url: str  # where leadflow is reachable from a mailbox, like https://crm.example.com

    def signature(self, kind: str, subject: int, target: str = "") -> str:
        payload = f"{kind}\x1f{subject}\x1f{target}".encode()
        return _b64(hmac.new(self.key, payload, hashlib.sha256).digest()[:18])

    def valid(self, kind: str, subject: int, signature: str, target: str = "") -> bool:
        return hmac.compare_digest(self.signature(kind, subject, target), signature)

    def _url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def open_pixel(self, message: int) -> str:
        return self._url(f"/m/o/{message}/{self.signature('open', message)}.gif")

    def click(self, message: int, url: str) -> str:
        sig = self.signature("click", message, url)
        return self._url(f"/m/c/{message}/{sig}?{urlencode({'u': url})}")

    def unsubscribe(self, message: int) -> str:
        return self._url(f"/m/u/{message}/{self.signature('unsubscribe', message)}")

    def profile(self, form_key: str, contact: int) -> str:
        token = f"{contact}.{self.signature('profile', contact, form_key)}"
        return self._url(f"/p/{quote(form_key)}?{urlencode({'t': token})}")

    def contact_of(self, form_key: str, token: str) -> int | None:
        """The contact a profile token names, if it is genuine."""
        number, _, signature = token.partition(".")
        if not number.isdigit() or not signature:
            return None
        contact = int(number)
        return contact if self.valid("profile", contact, signature, form_key) else None

"""Helpers for the console tests: a signed-in HTTP client that posts forms with their token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
from serving_support import KEYS

from serving.app import FairshelfServer

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token in a page's first form."""
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


class ConsoleClient:
    """An HTTP client of one server's console (cookies kept, redirects not followed)."""

    def __init__(self, server: FairshelfServer) -> None:
        self.base = f"http://127.0.0.1:{server.http_port}"
        self.http = httpx.Client(base_url=self.base, timeout=30, follow_redirects=False)

    def sign_in(self, role: str | None, key: str | None = None) -> httpx.Response:
        """Post the sign-in form with the key of ``role`` (or ``key``)."""
        page = self.http.get("/console/signin")
        data = {"csrf": csrf_of(page.text), "api_key": key or KEYS[role or ""], "next": "/console"}
        return self.http.post("/console/signin", data=data)

    def csrf(self, path: str = "/console") -> str:
        """The session's CSRF token, read from a page."""
        return csrf_of(self.http.get(path).text)

    def post(self, path: str, data: dict[str, Any], **kwargs: Any) -> httpx.Response:
        """Post a form with the session's token."""
        return self.http.post(path, data={"csrf": self.csrf(), **data}, **kwargs)

    def close(self) -> None:
        """Close the client."""
        self.http.close()


def signed_in(server: FairshelfServer, role: str) -> Iterator[ConsoleClient]:
    """A console client signed in as ``role``, closed when the generator finishes (for a
    fixture to ``yield from``)."""
    c = ConsoleClient(server)
    assert c.sign_in(role).status_code == 303
    yield c
    c.close()


def text_of(html: str, element_id: str) -> str:
    """The text inside the element with ``id`` (tags stripped)."""
    found = re.search(rf'<([a-z]+)[^>]*\sid="{element_id}"[^>]*>(.*?)</\1>', html, re.S)
    assert found, f"no element #{element_id}"
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(2)).split())

"""Keep credentials out of output: URLs with a password, API keys.

A password written into ``llm_base_url`` (``https://user:pass@host/v1``) is
taken out of the URL before any request is made and sent as HTTP basic auth
instead, so the URL that error messages, warnings and httpx's own ``-v`` logs
show holds none. ``redact`` is the last line of defence for any message that
might still quote a secret.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

HIDDEN = "***"


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """The URL without its ``user:password@`` part, and that user and password (or None)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=host)), (unquote(parts.username or ""), unquote(parts.password or ""))


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (the user name kept, to say which account)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{HIDDEN}@{host}"))


def redact(text: str, secrets: list[str | None]) -> str:
    """``text`` with every non-empty secret in it replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, HIDDEN)
    return text

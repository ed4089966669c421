"""No secret reaches a message or a log line: one ``redact`` for every kind markhouse handles
(presigned-URL signatures and keys in query strings, catalog passwords, given secret values)."""

from __future__ import annotations

import re
from collections.abc import Iterable

_SIGNED_PARAMS = re.compile(
    r"(?i)(X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|api_key|apikey|token)=[^&\s\"'<>]+"
)
_PASSWORD = re.compile(
    r"(?P<head>postgres(?:ql)?://[^:/@\s]*:)[^@\s]*(?=@)|(?P<kv>password\s*=\s*)(?:'[^']*'|\S+)", re.I
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with signatures, PostgreSQL passwords (URL or ``password=``) and ``secrets`` hidden."""
    text = _SIGNED_PARAMS.sub(lambda m: f"{m.group(1)}=REDACTED", text)
    text = _PASSWORD.sub(lambda m: (m["head"] or m["kv"]) + "***", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "REDACTED")
    return text

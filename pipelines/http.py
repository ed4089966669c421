"""One HTTP client for every vendor; every message built here goes through ``redact`` (keys, signatures)."""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple, TypedDict, Unpack

import requests
import urllib3
from requests.exceptions import ChunkedEncodingError

from pipelines.redaction import redact

log = logging.getLogger("markhouse.http")


def _redact_signatures(record: logging.LogRecord) -> bool:
    """Redacts signatures from records of loggers we do not own (urllib3 logs full URLs at DEBUG)."""
    if "X-Amz" in str(record.msg) or any("X-Amz" in str(a) for a in (record.args or ())):
        record.msg = redact(record.getMessage())
        record.args = None
    return True


logging.getLogger("urllib3.connectionpool").addFilter(_redact_signatures)


class VendorHTTPError(RuntimeError):
    """A vendor answered something that is not data; the message is already redacted."""

    def __init__(self, vendor: str, message: str, status: int | None = None, url: str = ""):
        self.vendor, self.status, self.url = vendor, status, url
        code = f"HTTP {status}: " if status is not None else ""
        super().__init__(f"{vendor}: {code}{message}" + (f" ({url})" if url else ""))


def _unreachable(exc: requests.RequestException) -> str | None:
    """Why no connection was made, when retrying could only wait (urllib3's ``reason``)."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return "cannot reach the host: its name does not resolve (check the base URL or DNS)"
    if isinstance(reason, urllib3.exceptions.NewConnectionError) and "refused" in str(reason).lower():
        return "cannot reach the host: connection refused (is the base URL's host and port right?)"
    return None


class RetryPolicy(NamedTuple):
    """Transient answers back off exponentially (``Retry-After`` wins, capped); the rest are final."""

    # 429 rate limit, 500 (transient for Kaiko and object stores), 503 maintenance, 502/504 proxies
    transient_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    max_attempts: int = 5
    backoff_base: float = 0.5
    max_delay: float = 30.0
    max_total_seconds: float = 120.0

    def delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after and retry_after.strip().isdigit():
            return min(float(retry_after), self.max_delay)
        return min(self.backoff_base * (2**attempt) * (1 + 0.25 * random.random()), self.max_delay)


_fetch = threading.local()


class RequestsCancelled(Exception):
    """A request not sent because the fetch it belongs to was cancelled (the run is stopping)."""


@contextmanager
def cancellable(cancel: threading.Event) -> Iterator[None]:
    """Requests raise once ``cancel`` is set: an interrupted run ends in one request's time."""
    previous = getattr(_fetch, "cancel", None)
    _fetch.cancel = cancel
    try:
        yield
    finally:
        _fetch.cancel = previous


@dataclass
class HttpClient:
    """GETs for one vendor. Thread-safe: each thread gets its own ``requests.Session``."""

    vendor: str
    headers: Mapping[str, str] = field(default_factory=dict)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: tuple[float, float] = (10.0, 120.0)
    rate_limit_per_second: float | None = None
    secrets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self._local, self._lock, self._next_start = threading.local(), threading.Lock(), 0.0
        self.secrets = tuple(s for s in (*self.secrets, *self.headers.values()) if s and len(s) >= 4)

    def _session(self) -> requests.Session:
        self._local.session = getattr(self._local, "session", None) or requests.Session()
        return self._local.session

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    def _wait_turn(self) -> None:
        """At most ``rate_limit_per_second`` request starts per second across threads (None: unlimited)."""
        if not self.rate_limit_per_second:
            return
        with self._lock:
            start = max(now := time.monotonic(), self._next_start)
            self._next_start = start + 1.0 / self.rate_limit_per_second
        if start > now:
            time.sleep(start - now)

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        *,
        send_headers: bool = True,
        final_statuses: Collection[int] = (),
    ) -> requests.Response:
        """A 200 response, or one in ``final_statuses`` (e.g. an expired presigned URL's 403)."""
        started, attempt = time.monotonic(), 0
        headers = dict(self.headers) if send_headers else None
        cancel: threading.Event | None = getattr(_fetch, "cancel", None)  # see cancellable
        while True:
            if cancel is not None and cancel.is_set():
                raise RequestsCancelled(f"{self.vendor}: not sent, the run is stopping")
            self._wait_turn()
            status: int | None = None
            retry_after: str | None = None
            try:
                resp = self._session().get(url, params=params, headers=headers, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout, ChunkedEncodingError) as exc:
                # retrying a name that does not resolve or a closed port only waits
                if unreachable := _unreachable(exc):
                    raise VendorHTTPError(self.vendor, unreachable, None, self._where(url, params)) from None
                problem = f"connection failed: {type(exc).__name__}"
            else:
                if resp.status_code == 200 or resp.status_code in final_statuses:
                    return resp
                status = resp.status_code
                if status not in self.retry.transient_statuses:
                    raise VendorHTTPError(self.vendor, self._error_text(resp), status, self._where(resp.url))
                problem = self._error_text(resp)
                retry_after = resp.headers.get("Retry-After")
            attempt, elapsed = attempt + 1, time.monotonic() - started
            wait = self.retry.delay(attempt - 1, retry_after)
            if attempt >= self.retry.max_attempts or elapsed + wait > self.retry.max_total_seconds:
                gave_up = f"gave up after {attempt} attempts in {elapsed:.1f}s, last answer: {problem}"
                raise VendorHTTPError(self.vendor, gave_up, status, self._where(url, params))
            retry = f"retry {attempt}/{self.retry.max_attempts - 1} in {wait:.1f}s"
            log.warning(f"{self.vendor}: transient answer ({self.redact(problem)}), {retry}")
            (cancel or threading.Event()).wait(wait)

    def get_json(self, url: str, params: Mapping[str, Any] | None = None) -> Any:
        """Not ``resp.json()``: simplejson refuses NaN, which must fail the validation naming its field."""
        resp = self.get(url, params)
        ctype = resp.headers.get("Content-Type", "")
        if "json" not in ctype:
            problem = f"expected JSON but got {ctype or 'no content type'}"
        else:
            try:
                return json.loads(resp.content)
            except ValueError as exc:
                problem = f"expected JSON but the body does not parse ({exc})"
        snippet = resp.content[:80].decode(errors="replace").replace("\n", " ")
        raise VendorHTTPError(self.vendor, f"{problem}: {snippet!r}", resp.status_code, self._where(resp.url))

    def _where(self, url: str, params: Mapping[str, Any] | None = None) -> str:
        if params:
            url = requests.Request("GET", url, params=params).prepare().url or url
        return self.redact(url)

    def _error_text(self, resp: requests.Response) -> str:
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and (text := str(body.get("error") or body.get("message") or "")):
            if details := body.get("details"):
                text += f" ({'; '.join(map(str, details)) if isinstance(details, list) else details})"
            return self.redact(text)
        # object stores answer XML, e.g. an expired presigned URL
        if s3 := re.search(r"<Code>(.*?)</Code>.*?<Message>(.*?)</Message>", resp.text, re.S):
            return self.redact(f"{s3.group(1)}: {s3.group(2)}")
        return self.redact(resp.text[:200].strip().replace("\n", " ") or resp.reason or "no body")


class HttpOptions(TypedDict, total=False):  # HttpClient's, as a vendor client takes them
    retry: RetryPolicy
    rate_limit_per_second: float | None


class VendorClient:
    """A vendor's base URL and one ``HttpClient`` (retries, rate limit, redaction of its key)."""

    vendor: ClassVar[str]

    def __init__(
        self, base_url: str, api_key: str | None, headers: Mapping[str, str], **options: Unpack[HttpOptions]
    ):
        self.base_url = base_url.rstrip("/")
        self.http = HttpClient(self.vendor, headers, secrets=(api_key,) if api_key else (), **options)

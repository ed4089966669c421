"""The shared HTTP policy: redaction, the retry schedule, and no retries where they can only wait."""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipelines.http import HttpClient, RetryPolicy, VendorHTTPError, redact
from pipelines.sources.loader import fetch_and_write
from pipelines.warehouse.lake import Warehouse


def test_redact_presigned_url_and_secrets() -> None:
    url = (
        "https://h/x.parquet?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F2026&"
        "X-Amz-Date=20261121T000000Z&X-Amz-Expires=300&X-Amz-Signature=abc123"
    )
    out = redact(url + " key=sk-123456", secrets=["sk-123456"])
    assert "AKIA" not in out and "abc123" not in out and "sk-123456" not in out
    assert "X-Amz-Expires=300" in out  # what is not secret stays readable
    assert "X-Amz-Signature=REDACTED" in out and "X-Amz-Credential=REDACTED" in out


def test_retry_after_wins_but_is_capped() -> None:
    policy = RetryPolicy(backoff_base=0.5, max_delay=10.0)
    assert policy.delay(0, "3") == 3.0
    assert policy.delay(0, "600") == 10.0
    # without Retry-After: exponential from backoff_base, with up to 25 % jitter
    assert 0.5 <= policy.delay(0, None) <= 0.625
    assert 2.0 <= policy.delay(2, None) <= 2.5
    assert policy.delay(10, "not-a-number") == pytest.approx(10.0)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


def test_connection_refused_fails_at_once_naming_the_cause(caplog: pytest.LogCaptureFixture) -> None:
    client = HttpClient("kaiko", retry=RetryPolicy(max_attempts=5, backoff_base=5.0))
    with caplog.at_level(logging.WARNING, logger="markhouse.http"), pytest.raises(VendorHTTPError) as info:
        client.get(f"http://127.0.0.1:{closed_port()}/v2/data")
    assert "kaiko: cannot reach the host: connection refused" in str(info.value)
    assert not [r for r in caplog.records if "retry" in r.getMessage()]  # not retried


def test_a_host_name_that_does_not_resolve_fails_at_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_such_name(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    client = HttpClient("aperiodic", retry=RetryPolicy(max_attempts=5, backoff_base=5.0))
    with caplog.at_level(logging.WARNING, logger="markhouse.http"), pytest.raises(VendorHTTPError) as info:
        client.get("http://vendor.example/api/v1/data")
    assert "aperiodic: cannot reach the host: its name does not resolve" in str(info.value)
    assert "vendor.example" in str(info.value)
    assert not [r for r in caplog.records if "retry" in r.getMessage()]


@contextmanager
def local_server(body: bytes, on_request: Callable[[], None] = lambda: None) -> Iterator[str]:
    """A loopback HTTP server answering every GET with ``body`` as JSON; yields its base URL."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            on_request()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_non_finite_numbers_reach_validation_whichever_json_parser_requests_uses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """requests parses with simplejson when it is installed (a dependency of many packages), and
    simplejson refuses NaN: the page must still parse, so validation can name the field."""
    import requests.models

    def refuse_constants(text: str | bytes, **kw: object) -> object:  # what simplejson >= 3.19 does
        return json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))

    # the module requests parses with, replaced (not the standard library's json, which it may be)
    monkeypatch.setattr(requests.models, "complexjson", SimpleNamespace(loads=refuse_constants))
    with local_server(b'[{"mark_price": NaN, "open_interest": Infinity}]') as url:
        page = HttpClient("test").get_json(f"{url}/page")
    assert math.isnan(page[0]["mark_price"]) and page[0]["open_interest"] == math.inf


def test_a_failed_write_stops_the_other_running_fetches_at_their_next_request(tmp_path: Path) -> None:
    """A batch's write fails while a fetch walks 200 pages: the walk stops at its next request (an
    interrupted or failed run waits for its fetch threads), and the failure is what propagates. (A
    failed fetch no longer stops the others: issue 24.)"""
    served = 0
    failing = threading.Event()

    def count() -> None:
        nonlocal served
        served += 1

    with local_server(b"[]", on_request=count) as url:
        client = HttpClient("test")

        def walk() -> int:
            for page in range(200):
                if page == 5:  # five pages in, it goes on once the write is failing
                    failing.wait(30)
                client.get_json(f"{url}/page/{page}")
            return 200

        def fail(con: object, batch: list[int]) -> None:
            failing.set()
            raise OSError("the warehouse refused the batch")

        with pytest.raises(OSError, match="the warehouse refused the batch"):
            fetch_and_write(
                Warehouse(tmp_path / "wh.sqlite"),
                {date(2026, 4, 1): [lambda: 0], date(2026, 5, 1): [walk]},  # April is written first
                fail,
                workers=2,
                months_per_transaction=1,
                on_batch=lambda done, total: None,
            )
    assert 5 <= served < 50, served  # not the 200 of a walk left to finish (a few in flight, at most)

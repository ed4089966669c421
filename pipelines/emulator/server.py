"""The local vendor emulator: one HTTP server, one handler module per vendor.

Tests start it in-process (``with Emulator() as emu:``) on an ephemeral port; ``serve_forever``
runs it in the foreground for manual use. The server owns what every vendor shares (the clock,
API keys, fault injection, the request log); each vendor's handler lives in its source folder
(``pipelines/sources/<vendor>/emulator.py``) and answers its own paths, and its ``SOURCE``
(``pipelines/sources/<vendor>/source.py``) names that handler and its URL root.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple, Protocol, Self
from urllib.parse import parse_qs, unquote, urlsplit

from .faults import Fault, Faults

DEFAULT_TODAY = date(2026, 5, 17)
"""The day the shipped real data ends; drives the monthly/daily file cut-over."""
DATA_END = datetime(2026, 5, 17, 8, tzinfo=UTC)
"""The instant the shipped real data ends (its last hourly candle opens at 07:00): the emulator's
"now" when freshness is judged, so a demo is judged by the emulator's clock, not the wall clock."""
DEFAULT_API_KEY = "emulator-key"
DEFAULT_PORT = 8765

_MAINTENANCE_PAGE = (
    b"<!DOCTYPE html><html><head><title>Scheduled maintenance</title></head>"
    b"<body><h1>We'll be back soon</h1><p>The service is undergoing scheduled maintenance."
    b"</p></body></html>"
)


class Clock:
    """Real time plus an offset, so tests can make presigned URLs expire without sleeping."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0

    def time(self) -> float:
        """Epoch seconds as the emulator sees them."""
        with self._lock:
            return time.time() + self._offset

    def now(self) -> datetime:
        """Aware UTC datetime as the emulator sees it."""
        return datetime.fromtimestamp(self.time(), tz=UTC)

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward (or back, if negative)."""
        with self._lock:
            self._offset += seconds

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0


class RequestRecord(NamedTuple):
    method: str
    path: str  # path + query, percent-decoded (what fault ``match`` strings are tested against)
    status: int


class RequestLog:
    """Thread-safe log of answered requests, for assertions like "the 429 was retried"."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(self.snapshot())

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def __getitem__(self, index: int) -> RequestRecord:
        with self._lock:
            return self._records[index]


@dataclass
class Request:
    """What a vendor handler sees of one HTTP request."""

    method: str
    raw_path: str  # path + query as received
    path: str  # decoded path, no query
    query: dict[str, list[str]]
    headers: Message
    base_url: str  # scheme://host:port the client used, for URLs handed back to it
    fault: Fault | None = None  # a content-level fault the handler must apply

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: object, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(payload).encode(), "application/json", dict(headers or {}))


def json_error(
    status: int,
    details: list[str],
    *,
    error: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The vendors' API error shape: ``{"error": ..., "details": [...]}`` (+ ``code`` if any)."""
    payload: dict[str, object] = {"error": error or HTTPStatus(status).phrase, "details": details}
    if code is not None:
        payload["code"] = code
    return json_response(status, payload, headers)


class VendorHandler(Protocol):
    """One vendor's part of the server."""

    def classify(self, path: str) -> str | None:
        """Say "list" (API call) or "file" (object download) for a path this vendor serves, else None."""
        ...

    def hands_out_urls(self, path: str) -> bool:
        """True for endpoints whose answer carries presigned URLs (where ``expired_url`` acts)."""
        ...

    def handle(self, request: Request) -> Response: ...

    def status_response(self, target: str, status: int, retry_after: int | None) -> Response:
        """The body this vendor's API (or object store) sends with an error status."""
        ...


class ApiOnlyHandler:
    """The routing of a vendor that serves API calls under one path prefix and nothing else (no
    object downloads, no presigned URLs): a ``VendorHandler`` sets ``api_prefix`` and adds the rest."""

    api_prefix: str

    def classify(self, path: str) -> str | None:
        return "list" if path.startswith(self.api_prefix) else None

    def hands_out_urls(self, path: str) -> bool:
        return False


def retry_after_header(retry_after: int | None) -> dict[str, str]:
    """``Retry-After`` for an error answer that names one, else no header."""
    return {"Retry-After": str(retry_after)} if retry_after is not None else {}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    _logged: bool
    protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers after stop()
    server_version = "markhouse-emulator"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:
        if self.server.emulator.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        emu = self.server.emulator
        split = urlsplit(self.path)
        path = unquote(split.path)
        host = self.headers.get("Host")
        request = Request(
            method=self.command,
            raw_path=self.path,
            path=path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=self.headers,
            base_url=f"http://{host}" if host else emu.url,
        )
        self._logged = False
        try:
            self._answer(emu, request)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            if not self._logged:
                self._log_request(500)

    def _log_request(self, status: int) -> None:
        self._logged = True
        self.server.emulator.requests.append(RequestRecord(self.command, unquote(self.path), status))

    def _answer(self, emu: Emulator, request: Request) -> int:
        vendor, target = emu.route(request.path)
        if vendor is None or target is None:
            return self._send(json_error(404, [f"No route for {request.path}"]))
        if request.method != "GET":
            return self._send(json_error(405, [f"{request.method} is not supported"]))
        fault = emu.faults.take(
            target, unquote(request.raw_path), can_expire_urls=vendor.hands_out_urls(request.path)
        )
        if fault is not None and fault.kind == "status":
            return self._send(vendor.status_response(target, fault.status or 503, fault.retry_after))
        if fault is not None and fault.kind == "html_200":
            return self._send(Response(200, _MAINTENANCE_PAGE, "text/html; charset=utf-8"))
        request.fault = fault
        try:
            response = vendor.handle(request)
        except Exception as exc:  # a bug in the emulator should be a visible 500, not a hang
            response = json_error(500, [f"{type(exc).__name__}: {exc}"])
        if fault is not None and fault.kind == "truncate" and response.status == 200:
            response.body = response.body[: len(response.body) // 2]
        drop = fault is not None and fault.kind == "drop_connection"
        return self._send(response, drop_connection=drop)

    def _send(self, response: Response, *, drop_connection: bool = False) -> int:
        # Log before the first byte goes out: a client that got its answer must find it logged.
        self._log_request(response.status)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if drop_connection:
            # Headers promise the whole body; send part of it and hang up mid-stream.
            self.wfile.write(response.body[: max(1, len(response.body) // 2)])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self.wfile.write(response.body)
        return response.status


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)


class Emulator:
    """In-process vendor emulator. ``with Emulator() as emu:`` serves on an ephemeral port.

    ``today`` drives the daily cut-over (months before it come as monthly files, complete days of
    its month as daily files). ``api_keys`` is the set of valid keys (``emu.api_key`` is the
    first); it can be changed while running.
    """

    def __init__(
        self,
        *,
        today: date = DEFAULT_TODAY,
        host: str = "127.0.0.1",
        port: int = 0,
        api_keys: Iterable[str] = (DEFAULT_API_KEY,),
        verbose: bool = False,
        aperiodic_files: Path | None = None,
    ) -> None:
        keys = list(api_keys)
        if not keys:
            raise ValueError("at least one API key is needed")
        self.today = today
        self.host = host
        self.port = port
        self.api_key = keys[0]
        self.api_keys: set[str] = set(keys)
        self.verbose = verbose
        # prebuilt Aperiodic objects ({exchange}/{interval}/{timestamp}/{symbol}/{YYYY-MM}.parquet),
        # served as stored: the benchmarks' synthetic 1m months
        self.aperiodic_files = aperiodic_files
        self.faults = Faults()
        self.clock = Clock()
        self.requests = RequestLog()
        self.signing_secret = secrets.token_bytes(32)  # presigned URLs die with the instance
        from pipelines import sources  # one handler per vendor folder, each declaring its own

        self._handlers: dict[str, VendorHandler] = {
            s.name: s.emulator_handler(self) for s in sources.sources()
        }
        self._roots = {s.name: s.emulator_root for s in sources.sources()}
        self.vendors: list[VendorHandler] = list(self._handlers.values())
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        server = _Server((self.host, self.port), self)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port. Safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; use `with Emulator() as emu:`")
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    def base_url(self, vendor: str) -> str:
        """What to pass as ``vendor``'s client ``base_url`` (the root its ``SOURCE`` declares)."""
        return f"{self.url}{self._roots[vendor]}"

    def handler(self, vendor: str) -> Any:
        """``vendor``'s part of the server (its settings, e.g. CayøLargo's auth header, are set on it)."""
        return self._handlers[vendor]

    # -- used by vendor handlers ----------------------------------------------------------------

    def route(self, path: str) -> tuple[VendorHandler | None, str | None]:
        for vendor in self.vendors:
            target = vendor.classify(path)
            if target is not None:
                return vendor, target
        return None, None

    def presign_now(self) -> datetime:
        """Signing time for a fresh presigned URL."""
        return self.clock.now()

    def expired_sign_time(self, expires: int) -> datetime:
        """A signing time far enough back that a URL valid ``expires`` seconds is already dead."""
        return self.clock.now() - timedelta(seconds=expires + 60)


def serve_forever(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    today: date = DEFAULT_TODAY,
    api_keys: Iterable[str] = (DEFAULT_API_KEY,),
    verbose: bool = False,
) -> None:
    """Run the emulator in the foreground until Ctrl-C (the ``markhouse emulator`` command)."""
    emu = Emulator(today=today, host=host, port=port, api_keys=api_keys, verbose=verbose)
    with emu:
        print(f"markhouse vendor emulator on {emu.url}  (today = {today.isoformat()})", flush=True)
        from pipelines import sources

        for source in sources.sources():
            print(f"  {source.label} base URL: {emu.base_url(source.name)}", flush=True)
        print(f"  API key: {emu.api_key}   preview key: DEMO-KEY", flush=True)
        print("Ctrl-C to stop.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping", flush=True)

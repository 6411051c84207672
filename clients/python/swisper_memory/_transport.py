"""HTTP over the standard library: a small pool of keep-alive connections per client, and retries
that never store anything twice.

Each request takes a connection from the pool for itself (so one client serves many threads), and
gives it back once the answer is read. A connection the service closed while it sat idle is
noticed (its socket reads as ready) and dropped before use.

Retries: after a connection error or a timeout, and on 429 and 503 (waiting what ``Retry-After``
asks). Never on another 4xx or on a 500. A request that may have reached the service (the
connection broke after it was sent) is sent again only when sending it twice changes nothing:
every write the client sends is such, except ``add_summary`` (see ``idempotent``).
"""

from __future__ import annotations

import email.utils
import http.client
import json
import random
import select
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit

from .errors import ApiError, ConnectionFailedError, RequestTimeoutError, error_class

__all__ = ["Answer", "Transport"]

USER_AGENT = "swisper-memory-python"


class Answer(NamedTuple):
    """A successful answer: its status and its JSON body (None when it had none)."""

    status: int
    body: Any


class _NotSent(Exception):
    """The request never left: the connection could not be opened."""


class _MaybeSent(Exception):
    """The connection broke, or timed out, after the request was (perhaps partly) sent."""


class _Pool:
    """Idle keep-alive connections to one origin, newest first; at most ``size`` are kept."""

    def __init__(self, scheme: str, host: str, port: int, timeout: float, size: int) -> None:
        self._scheme = scheme
        self._host = host
        self._port = port
        self._timeout = timeout
        self._size = size
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._closed = False

    def acquire(self) -> http.client.HTTPConnection:
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if not _was_closed(connection):
                    return connection
                connection.close()
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)

    def release(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._size:
                self._idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def idle_count(self) -> int:
        with self._lock:
            return len(self._idle)


def _was_closed(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle connection's socket is gone or readable (the peer closed it: EOF)."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)
    except (OSError, ValueError):
        return True


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _decode(data: bytes) -> Any:
    return json.loads(data.decode("utf-8")) if data else None


class Transport:
    """Sends requests to one service: base URL, API key, timeout, retries, connection pool."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        timeout: float,
        retries: int,
        pool_size: int,
        backoff: float,
        max_retry_after: float,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"base_url must be an http:// or https:// URL, like http://127.0.0.1:8080 (got {base_url!r})"
            )
        if parts.query or parts.fragment:
            raise ValueError(f"base_url must have no query or fragment (got {base_url!r})")
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds (got {timeout!r})")
        if not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a non-negative integer (got {retries!r})")
        if not isinstance(pool_size, int) or pool_size < 1:
            raise ValueError(f"pool_size must be a positive integer (got {pool_size!r})")
        self.base_url = base_url.rstrip("/")
        self._prefix = parts.path.rstrip("/")
        self._api_key = api_key
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._max_retry_after = max_retry_after
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self._pool = _Pool(parts.scheme, parts.hostname, port, timeout, pool_size)

    def close(self) -> None:
        self._pool.close()

    def idle_connections(self) -> int:
        """Connections waiting in the pool for the next request."""
        return self._pool.idle_count()

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        payload: bytes | None = None,
        idempotent: bool = True,
        retries: int | None = None,
        content_type: str = "application/json",
    ) -> Answer:
        """Sends a request, retrying as the module says; raises an ApiError for an error answer.

        ``payload`` is a body of ``content_type`` (JSON by default). ``idempotent``: sending it
        twice has the effect of sending it once, so it is sent again after a connection that broke
        once it was sent. ``retries`` overrides the client's.
        """
        target, headers = self._target(path, query, "application/json")
        if payload is not None:
            headers["Content-Type"] = content_type
        allowed = self._retries if retries is None else retries
        attempt = 0
        while True:
            try:
                status, answer_headers, data = self._send(method, target, payload, headers)
            except (_NotSent, _MaybeSent) as broken:
                cause = broken.__cause__
                if attempt >= allowed or (isinstance(broken, _MaybeSent) and not idempotent):
                    raise self._no_answer(method, target, cause, attempt + 1) from cause
                time.sleep(self._delay(attempt))
                attempt += 1
                continue
            if status < 400:
                try:
                    return Answer(status, _decode(data))
                except ValueError:
                    raise ApiError(
                        f"{method} {target}: the answer is not JSON (is {self.base_url} a Swisper Memory service?)",
                        status=status,
                        code="invalid_answer",
                    ) from None
            error = self._error(status, answer_headers, data)
            if status in (429, 503) and attempt < allowed:
                wait = error.retry_after if error.retry_after is not None else self._delay(attempt)
                if wait <= self._max_retry_after:
                    time.sleep(wait)
                    attempt += 1
                    continue
            raise error

    def _target(self, path: str, query: Mapping[str, Any] | None, accept: str) -> tuple[str, dict[str, str]]:
        """The request target (path and query) and the headers every request sends."""
        target = self._prefix + path
        pairs = {name: value for name, value in (query or {}).items() if value is not None}
        if pairs:
            target += "?" + urlencode(pairs)
        # One id for every attempt, so that the service's logs show the retries together.
        headers = {"Accept": accept, "User-Agent": USER_AGENT, "X-Request-Id": str(uuid.uuid4())}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return target, headers

    def lines(self, path: str) -> Iterator[bytes]:
        """The lines of a GET answered as JSON Lines, read as they arrive (never the whole answer in
        memory). Retried like any GET until the answer starts; an error answer raises its ApiError."""
        target, headers = self._target(path, None, "application/x-ndjson")
        attempt = 0
        while True:
            connection = self._pool.acquire()
            try:
                if connection.sock is None:
                    connection.connect()
                connection.request("GET", target, headers=headers)
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                if attempt >= self._retries:
                    raise self._no_answer("GET", target, error, attempt + 1) from error
                time.sleep(self._delay(attempt))
                attempt += 1
                continue
            if response.status >= 400:
                error = self._error(response.status, response.headers, response.read())
                connection.close()
                if response.status in (429, 503) and attempt < self._retries:
                    time.sleep(min(error.retry_after or self._delay(attempt), self._max_retry_after))
                    attempt += 1
                    continue
                raise error
            return self._read_lines(connection, response)

    def _read_lines(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse) -> Iterator[bytes]:
        done = False
        try:
            for line in response:
                if line.strip():
                    yield line
            done = True
        finally:
            # A reader that stopped early leaves the answer unread: that connection cannot be reused.
            if done and not response.will_close:
                self._pool.release(connection)
            else:
                connection.close()

    def _send(
        self, method: str, target: str, payload: bytes | None, headers: dict[str, str]
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        connection = self._pool.acquire()
        if connection.sock is None:
            try:
                connection.connect()
            except ssl.SSLCertVerificationError as error:
                # Not a passing fault: trying again would fail the same way.
                connection.close()
                raise ConnectionFailedError(f"{self.base_url}: {error}") from error
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                raise _NotSent() from error
        try:
            connection.request(method, target, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise _MaybeSent() from error
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            self._pool.release(connection)
        return response.status, response.headers, data

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with jitter: about backoff, 2 x backoff, 4 x ... up to 2 s."""
        return min(2.0, self._backoff * 2.0**attempt) * random.uniform(0.5, 1.0)

    def _no_answer(self, method: str, target: str, cause: BaseException | None, attempts: int) -> ConnectionFailedError:
        what = f"{method} {self.base_url}{target[len(self._prefix) :]}"
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        if isinstance(cause, socket.timeout):
            return RequestTimeoutError(f"{what}: no answer within {self._timeout} s ({tries})")
        return ConnectionFailedError(f"{what}: {type(cause).__name__}: {cause} ({tries})")

    def _error(self, status: int, headers: http.client.HTTPMessage, data: bytes) -> ApiError:
        code, message, field = f"http_{status}", "", None
        try:
            body = _decode(data)
            error = body["error"]
            code = str(error.get("code") or code)
            message = str(error.get("message") or "")
            field = error.get("field")
        except (ValueError, TypeError, KeyError, AttributeError):
            message = data.decode("utf-8", "replace")[:200]
        return error_class(status, code)(
            message or f"HTTP {status}",
            status=status,
            code=code,
            field=field,
            request_id=headers.get("x-request-id"),
            retry_after=_retry_after(headers.get("retry-after")),
        )

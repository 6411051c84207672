"""What the tests run against: the real service (``node dist/cli/main.js serve`` from this
checkout, on a free port), its storage (an embedded database in a temporary folder, or a fresh
PostgreSQL database and a Redis key prefix of its own), a TCP proxy that breaks connections on
purpose, and a scripted HTTP server for the retry rules."""

from __future__ import annotations

import collections
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from swisper_memory import MemoryManager

ROOT = Path(__file__).resolve().parents[3]
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
TEST_DATABASE_ADMIN_URL = os.environ.get("TEST_DATABASE_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/test")
# As in the TypeScript suite: set (CI), a missing Redis or PostgreSQL fails instead of skipping.
REQUIRE_SERVERS = os.environ.get("SWISPER_REQUIRE_SERVERS") == "1"
# Variables of the caller's environment that would point the service elsewhere.
SERVICE_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_URLS",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_SENTINELS",
    "MEMORY_DATA_DIR",
    "MEMORY_API_KEYS",
    "MEMORY_API_KEYS_FILE",
    "MEMORY_KEY_PREFIX",
    "MEMORY_MIGRATION_PHASE",
    "PORT",
    "HOST",
)

_built = threading.Lock()
_build_done = False


def node() -> str:
    found = os.environ.get("NODE") or shutil.which("node")
    if not found:
        raise RuntimeError("node is not on PATH: the tests run the service from this checkout")
    return found


def build_service() -> None:
    """Builds dist/ when a source is newer than the last build (a no-op after `npm run build`)."""
    global _build_done
    with _built:
        if not _build_done:
            subprocess.run([node(), "scripts/build-if-changed.mjs"], cwd=ROOT, check=True)
            _build_done = True


def server_answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1):
            return True
    except OSError:
        return False


def require_servers() -> None:
    """Skips (or, with SWISPER_REQUIRE_SERVERS=1, fails) where Redis or PostgreSQL does not answer."""
    missing = [
        name
        for name, url in (("Redis", TEST_REDIS_URL), ("PostgreSQL", TEST_DATABASE_ADMIN_URL))
        if not server_answers(url)
    ]
    if missing:
        message = f"{' and '.join(missing)} not answering ({TEST_REDIS_URL}, {TEST_DATABASE_ADMIN_URL})"
        if REQUIRE_SERVERS:
            raise RuntimeError(message)
        raise unittest.SkipTest(message)


def _run_sql(url: str, statement: str) -> None:
    """One statement, through the checkout's own PostgreSQL driver (Python's standard library has none)."""
    script = (
        "const pg = require('pg');"
        "(async () => { const client = new pg.Client({ connectionString: process.argv[1] });"
        " await client.connect(); try { await client.query(process.argv[2]); } finally { await client.end(); } })()"
        ".catch((error) => { console.error(error.message); process.exit(1); });"
    )
    subprocess.run([node(), "-e", script, url, statement], cwd=ROOT, check=True)


class Storage:
    """What one service stores in: the variables that point it there, and how to remove it."""

    def __init__(self, env: dict[str, str], cleanup: list[Any]) -> None:
        self.env = env
        self._cleanup = cleanup

    @classmethod
    def embedded(cls) -> Storage:
        """The default deployment: no DATABASE_URL, PGlite in a folder of its own."""
        folder = tempfile.mkdtemp(prefix="swisper-memory-py-")
        return cls({"MEMORY_DATA_DIR": folder}, [lambda: shutil.rmtree(folder, ignore_errors=True)])

    @classmethod
    def redis_and_postgres(cls) -> Storage:
        """A fresh PostgreSQL database and a Redis key prefix nobody else uses."""
        name = f"swm_py_{uuid.uuid4().hex[:12]}"
        _run_sql(TEST_DATABASE_ADMIN_URL, f"CREATE DATABASE {name}")
        database_url = TEST_DATABASE_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        prefix = f"pyc_{uuid.uuid4().hex[:12]}"
        return cls(
            {"DATABASE_URL": database_url, "REDIS_URL": TEST_REDIS_URL, "MEMORY_KEY_PREFIX": prefix},
            [
                lambda: _run_sql(TEST_DATABASE_ADMIN_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                lambda: delete_redis_keys(TEST_REDIS_URL, f"{prefix}:*"),
            ],
        )

    def remove(self) -> None:
        for step in self._cleanup:
            step()


class Service:
    """``swisper-memory serve`` as users run it: a child process on a free port, stopped by SIGTERM.
    It owns its storage: ``stop()`` (or a failed start) removes it."""

    def __init__(self, storage: Storage, **env: str) -> None:
        self.storage: Storage | None = storage
        self._env = env
        self._process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._lines: collections.deque[str] = collections.deque(maxlen=200)
        self._url: str | None = None
        self._listening = threading.Event()
        self.url = ""

    def start(self, timeout: float = 90.0) -> Service:
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout: float) -> None:
        build_service()
        env = {name: value for name, value in os.environ.items() if name not in SERVICE_VARIABLES}
        assert self.storage is not None
        env.update({"PORT": "0", "HOST": "127.0.0.1", "LOG_LEVEL": "info", **self.storage.env, **self._env})
        self._process = subprocess.Popen(
            [node(), "dist/cli/main.js", "serve"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        # Read every line, always: a full pipe would stop the service.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._listening.wait(timeout) or self._url is None:
            raise RuntimeError("the service did not start:\n" + "\n".join(self._lines))
        self.url = self._url

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for raw in self._process.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            self._lines.append(line)
            if not self._listening.is_set() and "listening on" in line:
                try:
                    self._url = json.loads(line)["url"]
                except (ValueError, KeyError):
                    pass
                self._listening.set()
        self._listening.set()

    def log(self) -> str:
        return "\n".join(self._lines)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None and process.stdout is not None:
            if self._reader is not None:
                self._reader.join(timeout=5)
            process.stdout.close()
        storage, self.storage = self.storage, None
        if storage is not None:
            storage.remove()


def delete_redis_keys(url: str, pattern: str) -> None:
    """SCAN and DEL over a raw socket (the standard library has no Redis client)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port or 6379), timeout=5) as sock:
        stream = sock.makefile("rwb")
        cursor = "0"
        while True:
            reply = _redis(stream, "SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
            cursor, keys = reply[0].decode(), reply[1]
            if keys:
                _redis(stream, "DEL", *keys)
            if cursor == "0":
                break


def _redis(stream: Any, *args: Any) -> Any:
    encoded = [arg if isinstance(arg, bytes) else str(arg).encode() for arg in args]
    stream.write(b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in encoded))
    stream.flush()
    return _redis_reply(stream)


def _redis_reply(stream: Any) -> Any:
    line = stream.readline()
    kind, rest = line[:1], line[1:-2]
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind in (b"+", b":"):
        return rest
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else stream.read(size + 2)[:-2]
    if kind == b"*":
        return [_redis_reply(stream) for _ in range(int(rest))]
    raise RuntimeError(f"unexpected Redis reply {line!r}")


class BreakingProxy:
    """A TCP proxy in front of the service that breaks connections on purpose.

    ``drop_responses``: that many next answers are not relayed: the proxy waits for the service to
    answer (so the request was processed), then closes the caller's connection instead.
    ``hold_responses``: that many next answers are held for ``hold_seconds`` (past the caller's
    timeout), then the connection is closed. ``drop_requests``: that many next requests are not
    forwarded (the service never sees them) and the connection is closed. ``cut_requests``: that
    many next requests are forwarded in part (their first half: the headers and part of the body),
    then both connections are closed, mid-request.
    """

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._upstream = (parts.hostname, parts.port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self.drop_responses = 0
        self.hold_responses = 0
        self.hold_seconds = 0.0
        self.drop_requests = 0
        self.cut_requests = 0
        self.connections = 0
        self.broken = 0
        self._open: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._upstream)
            with self._lock:
                self.connections += 1
                self._open += [client, upstream]
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._answers, args=(upstream, client), daemon=True).start()

    def _take(self, name: str) -> bool:
        with self._lock:
            if getattr(self, name) > 0:
                setattr(self, name, getattr(self, name) - 1)
                self.broken += 1
                return True
            return False

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        while True:
            # A request (the client sends the next one only after the last answer).
            data = _receive(client)
            if not data or self._take("drop_requests"):
                break
            if self._take("cut_requests"):
                try:
                    upstream.sendall(data[: len(data) // 2])
                    time.sleep(0.2)  # the service has read the part before the connection goes
                except OSError:
                    pass
                break
            try:
                upstream.sendall(data)
            except OSError:
                break
        _close(client, upstream)

    def _answers(self, upstream: socket.socket, client: socket.socket) -> None:
        while True:
            data = _receive(upstream)
            if not data:
                break
            if self._take("drop_responses"):
                break
            if self._take("hold_responses"):
                time.sleep(self.hold_seconds)
                break
            try:
                client.sendall(data)
            except OSError:
                break
        _close(client, upstream)

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            sockets, self._open = self._open, []
        _close(*sockets)


def _receive(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


Scripted = tuple[int, dict[str, str], Any]


class ScriptedServer:
    """An HTTP/1.1 server with keep-alive that answers from a script: each request takes the next
    ``(status, headers, body)``; with the script empty it answers 200 ``{}``. It records each
    request (method, path, headers, JSON body) and counts connections; a bytes body is sent as it
    is. ``close_after_answer``: closes each connection once it has answered (without saying so), as
    an idle timeout would."""

    def __init__(self) -> None:
        self.script: collections.deque[Scripted] = collections.deque()
        self.requests: list[dict[str, Any]] = []
        self.connections = 0
        self.close_after_answer = False
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                server.connections += 1

            def log_message(self, *_: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                server.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers.items()),
                        "body": json.loads(raw) if raw else None,
                    }
                )
                status, headers, body = server.script.popleft() if server.script else (200, {}, {})
                data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
                if server.close_after_answer:
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = _answer

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def error(
        self, status: int, code: str, headers: dict[str, str] | None = None, field: str | None = None
    ) -> Scripted:
        body: dict[str, Any] = {"code": code, "message": f"{code} (scripted)"}
        if field:
            body["field"] = field
        return (status, headers or {}, {"error": body})

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def free_port() -> int:
    """A port nothing listens on (for connection-refused cases)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The contracts mix into TestCase subclasses (one per deployment); typed as TestCase so that type
# checkers see a TestCase.
if TYPE_CHECKING:
    _TestCase = unittest.TestCase
else:
    _TestCase = object


class ServiceContract(_TestCase):
    """A contract's fixture: each subclass starts the service on one deployment (``make_storage``)
    and a client of it, for all its tests."""

    service: Service
    memory: MemoryManager
    name = ""

    @classmethod
    def make_storage(cls) -> Storage:
        raise NotImplementedError

    @classmethod
    def setUpClass(cls) -> None:
        cls.service = Service(cls.make_storage()).start()
        cls.memory = MemoryManager(cls.service.url)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.memory.close()
        cls.service.stop()

    def session(self, label: str) -> str:
        return f"{self.name}-{label}-{uuid.uuid4().hex[:8]}"

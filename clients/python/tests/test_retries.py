"""The retry rules and the connection pool, against a scripted HTTP server: what is retried (429
after Retry-After, 503, broken connections), what never is (other 4xx, 500), and that every
attempt carries the same idempotency ids."""

from __future__ import annotations

import inspect
import threading
import time
import unittest
from typing import Any

from swisper_memory import (
    ApiError,
    AuthenticationError,
    ForbiddenError,
    InternalServerError,
    MemoryManager,
    NotFoundError,
    RateLimitedError,
    ServiceUnavailableError,
    ShuttingDownError,
    StorageUnavailableError,
    SwisperMemoryError,
    ValidationError,
)

from .support import Scripted, ScriptedServer

STORED: Scripted = (201, {}, {"session_id": "s", "messages": [{"seq": 1, "duplicate": False}]})


class RetryRulesTest(unittest.TestCase):
    def setUp(self) -> None:
        self.server = ScriptedServer()
        self.memory = MemoryManager(self.server.url, retries=3, backoff=0.01)

    def tearDown(self) -> None:
        self.memory.close()
        self.server.close()

    def bodies(self) -> list[Any]:
        return [request["body"] for request in self.server.requests]

    def test_429_waits_what_retry_after_asks_then_sends_the_same_message_again(self) -> None:
        self.server.script.extend([self.server.error(429, "rate_limited", {"Retry-After": "1"}), STORED])
        started = time.monotonic()
        self.assertTrue(self.memory.add_message("s", {"role": "user", "content": "hi"}))
        self.assertGreaterEqual(time.monotonic() - started, 1.0)
        first, second = self.server.requests
        self.assertEqual(first["body"], second["body"])
        self.assertTrue(first["body"]["id"])
        self.assertEqual(first["headers"]["X-Request-Id"], second["headers"]["X-Request-Id"])

    def test_503_is_retried_with_backoff_and_raised_typed_once_the_retries_are_spent(self) -> None:
        unavailable = self.server.error(503, "storage_unavailable", {"Retry-After": "0"})
        self.server.script.extend([unavailable, unavailable, STORED])
        self.assertEqual(self.memory.add_messages("s", [{"role": "user", "content": "hi"}]), STORED[2]["messages"])
        self.assertEqual(len(self.server.requests), 3)
        self.assertEqual(len({request["body"]["messages"][0]["id"] for request in self.server.requests}), 1)

        self.server.requests.clear()
        self.server.script.extend([self.server.error(503, "storage_unavailable")] * 4)
        with self.assertRaises(StorageUnavailableError) as raised:
            self.memory.get_context("s")
        self.assertEqual(len(self.server.requests), 4)  # the first and 3 retries
        self.assertIsInstance(raised.exception, ServiceUnavailableError)
        self.server.script.extend([self.server.error(503, "shutting_down")] * 4)
        with self.assertRaises(ShuttingDownError):
            self.memory.get_context("s")

    def test_other_errors_are_never_retried(self) -> None:
        cases: list[tuple[Scripted, type[ApiError]]] = [
            (self.server.error(400, "invalid_input", field="message.role"), ValidationError),
            (self.server.error(401, "unauthorized"), AuthenticationError),
            (self.server.error(403, "forbidden"), ForbiddenError),
            (self.server.error(404, "not_found"), NotFoundError),
            (self.server.error(500, "internal"), InternalServerError),
            (self.server.error(418, "teapot"), ApiError),
        ]
        for answer, kind in cases:
            self.server.requests.clear()
            self.server.script.append(answer)
            with self.subTest(status=answer[0]), self.assertRaises(kind) as raised:
                self.memory.add_message("s", {"role": "user", "content": "hi"})
            self.assertEqual(len(self.server.requests), 1)
            self.assertEqual(raised.exception.status, answer[0])
            self.assertIsInstance(raised.exception, SwisperMemoryError)
        self.assertEqual(raised.exception.code, "teapot")

    def test_a_wait_beyond_max_retry_after_is_raised_at_once(self) -> None:
        memory = MemoryManager(self.server.url, max_retry_after=2.0)
        self.server.script.append(self.server.error(429, "rate_limited", {"Retry-After": "30"}))
        started = time.monotonic()
        with self.assertRaises(RateLimitedError) as raised:
            memory.get_session_config("s")
        self.assertLess(time.monotonic() - started, 1.0)
        self.assertEqual(raised.exception.retry_after, 30.0)
        self.assertEqual(len(self.server.requests), 1)
        memory.close()

    def test_add_summary_is_retried_when_it_was_not_processed(self) -> None:
        self.server.script.extend(
            [
                self.server.error(503, "storage_unavailable", {"Retry-After": "0"}),
                (201, {}, {"session_id": "s", "added": True}),
            ]
        )
        self.assertTrue(self.memory.summary_store.add_summary("s", "A summary."))
        self.assertEqual(len(self.server.requests), 2)

    def test_a_non_json_error_answer_is_still_typed(self) -> None:
        self.server.script.append((502, {}, "bad gateway"))
        with self.assertRaises(ApiError) as raised:
            self.memory.get_context("s")
        self.assertEqual((raised.exception.status, raised.exception.code), (502, "http_502"))

    def test_a_success_that_is_not_json_is_an_api_error(self) -> None:
        self.server.script.append((200, {}, b"<html>a proxy's page</html>"))
        with self.assertRaises(ApiError) as raised:
            self.memory.get_session_config("s")
        self.assertEqual((raised.exception.status, raised.exception.code), (200, "invalid_answer"))

    def test_deletes_of_what_is_gone_are_done(self) -> None:
        for call in (
            self.memory.clear_session_memory,
            self.memory.buffer_store.clear_buffer,
            self.memory.summary_store.clear_summaries,
        ):
            self.server.script.append(self.server.error(404, "not_found"))
            self.assertIs(call("s"), True)
        # A service without the route (older than the client) is not taken for an empty session.
        self.server.script.append((404, {}, {"error": {"code": "not_found", "message": "no route DELETE /x"}}))
        with self.assertRaises(NotFoundError):
            self.memory.buffer_store.clear_buffer("s")
        self.server.requests.pop()
        self.assertEqual([r["method"] for r in self.server.requests], ["DELETE"] * 3)
        self.assertEqual(
            [r["path"] for r in self.server.requests],
            ["/v1/sessions/s", "/v1/sessions/s/buffer", "/v1/sessions/s/summaries"],
        )


class ConnectionsTest(unittest.TestCase):
    def setUp(self) -> None:
        self.server = ScriptedServer()

    def tearDown(self) -> None:
        self.server.close()

    def test_requests_reuse_a_keep_alive_connection(self) -> None:
        with MemoryManager(self.server.url) as memory:
            for _ in range(5):
                memory.get_session_config("s")
        self.assertEqual(self.server.connections, 1)

    def test_a_connection_the_service_closed_while_idle_is_not_used_again(self) -> None:
        # Even add_summary, which is never sent twice, goes through: the stale connection is
        # dropped before the request is written.
        self.server.close_after_answer = True
        with MemoryManager(self.server.url, retries=0) as memory:
            for _ in range(3):
                self.server.script.append((201, {}, {"session_id": "s", "added": True}))
                self.assertTrue(memory.summary_store.add_summary("s", "A summary."))
                time.sleep(0.05)
        self.assertEqual(self.server.connections, 3)
        self.assertEqual(len(self.server.requests), 3)

    def test_the_pool_keeps_at_most_pool_size_idle_connections(self) -> None:
        memory = MemoryManager(self.server.url, pool_size=2)
        barrier = threading.Barrier(6)
        errors: list[BaseException] = []

        def read() -> None:
            try:
                barrier.wait()
                for _ in range(5):
                    memory.get_session_config("s")
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

        threads = [threading.Thread(target=read) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(self.server.requests), 30)
        self.assertLessEqual(memory._transport.idle_connections(), 2)
        memory.close()
        self.assertEqual(memory._transport.idle_connections(), 0)

    def test_paths_and_queries(self) -> None:
        with MemoryManager(self.server.url + "/memory/", api_key="k" * 20) as memory:
            self.server.script.append((200, {}, {"session_id": "a/b c", "messages": [], "buffer_info": {}}))
            memory.buffer_store.get_messages("a/b c", limit=3)
            self.server.script.append((200, {}, {"session_id": "s"}))
            memory.get_context("s", max_tokens=100, model="gpt-4o")
            self.server.script.append((200, {}, {"ready": True}))
            self.assertTrue(memory.is_available())
        paths = [r["path"] for r in self.server.requests]
        self.assertEqual(
            paths,
            [
                "/memory/v1/sessions/a%2Fb%20c/buffer?limit=3",
                "/memory/v1/sessions/s/context?max_tokens=100&model=gpt-4o",
                "/memory/ready",
            ],
        )
        self.assertEqual(self.server.requests[0]["headers"]["Authorization"], "Bearer " + "k" * 20)

    def test_the_constructor_is_the_specifications_with_the_issues_defaults(self) -> None:
        parameters = inspect.signature(MemoryManager).parameters
        self.assertEqual(
            [(name, parameters[name].default) for name in ("base_url", "api_key", "timeout", "retries")],
            [("base_url", None), ("api_key", None), ("timeout", 5.0), ("retries", 3)],
        )
        self.assertEqual(list(parameters)[:4], ["base_url", "api_key", "timeout", "retries"])

    def test_bad_settings_are_refused(self) -> None:
        for settings in (
            {"base_url": "ftp://example.com"},
            {"base_url": "http://example.com?x=1"},
            {"timeout": 0},
            {"retries": -1},
        ):
            kwargs: dict[str, Any] = {"base_url": self.server.url, **settings}
            with self.subTest(settings=settings), self.assertRaises(ValueError):
                MemoryManager(**kwargs)

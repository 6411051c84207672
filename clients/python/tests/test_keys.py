"""API keys and tenants, the body limit and the rate limit, against the real service (embedded)."""

from __future__ import annotations

import time
import unittest
import uuid

from swisper_memory import (
    ApiError,
    AuthenticationError,
    ForbiddenError,
    MemoryManager,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
)

from .support import Service, Storage

KEY_ACME = "acme-key-0123456789abcdef0123"
KEY_GLOBEX = "globex-key-fedcba9876543210fedc"


class KeysAndTenantsTest(unittest.TestCase):
    service: Service
    acme: MemoryManager
    globex: MemoryManager

    @classmethod
    def setUpClass(cls) -> None:
        cls.service = Service(
            Storage.embedded(),
            MEMORY_API_KEYS=f"acme:{KEY_ACME},globex:{KEY_GLOBEX}",
            MEMORY_BODY_LIMIT_BYTES="65536",
        ).start()
        cls.acme = MemoryManager(cls.service.url, api_key=KEY_ACME)
        cls.globex = MemoryManager(cls.service.url, api_key=KEY_GLOBEX)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.acme.close()
        cls.globex.close()
        cls.service.stop()

    def test_a_missing_or_wrong_key_is_an_authentication_error(self) -> None:
        session = f"auth-{uuid.uuid4().hex[:8]}"
        for key in (None, f"{KEY_ACME}x"):
            with (
                MemoryManager(self.service.url, api_key=key) as memory,
                self.assertRaises(AuthenticationError) as raised,
            ):
                memory.add_message(session, {"role": "user", "content": "let me in"})
            self.assertEqual((raised.exception.status, raised.exception.code), (401, "unauthorized"))
        with self.assertRaises(NotFoundError):
            self.acme.get_context(session)  # nothing was stored

    def test_the_key_comes_from_the_environment(self) -> None:
        from unittest import mock

        with mock.patch.dict(
            "os.environ", {"SWISPER_MEMORY_URL": self.service.url, "SWISPER_MEMORY_API_KEY": KEY_ACME}
        ):
            memory = MemoryManager()
        with memory:
            self.assertEqual(memory.base_url, self.service.url)
            session = f"env-{uuid.uuid4().hex[:8]}"
            self.assertTrue(memory.add_message(session, {"role": "user", "content": "from the environment"}))
        self.assertEqual(self.acme.get_context(session)["message_count"], 1)

    def test_availability_needs_no_key(self) -> None:
        with MemoryManager(self.service.url) as anonymous:
            self.assertIs(anonymous.is_available(), True)

    def test_each_tenant_sees_only_its_own_sessions(self) -> None:
        session = f"shared-{uuid.uuid4().hex[:8]}"
        self.acme.add_message(session, {"role": "user", "content": "acme's secret"})
        self.acme.save_context(session, {"current_state": "acme's state"})
        self.acme.summary_store.add_summary(session, "acme's summary")
        with self.assertRaises(NotFoundError):
            self.globex.get_context(session)
        with self.assertRaises(NotFoundError):
            self.globex.buffer_store.get_messages(session)
        with self.assertRaises(NotFoundError):
            self.globex.summary_store.get_summary_history(session)
        self.assertIsNone(self.globex.load_context(session))
        # Globex's erase and clears touch its own namespace only.
        self.assertTrue(self.globex.clear_session_memory(session))
        self.assertTrue(self.globex.buffer_store.clear_buffer(session))
        self.assertTrue(self.globex.summary_store.clear_summaries(session))
        # A write lands in globex's own session of that name.
        self.globex.add_message(session, {"role": "user", "content": "globex's own"})
        self.assertEqual([m["content"] for m in self.globex.get_context(session)["buffer_messages"]], ["globex's own"])
        context = self.acme.get_context(session)
        self.assertEqual([m["content"] for m in context["buffer_messages"]], ["acme's secret"])
        self.assertEqual(context["current_summary"], "acme's summary")
        self.assertEqual(self.acme.load_context(session), {"current_state": "acme's state", "session_id": session})

    def test_an_operation_the_keys_tenant_may_not_use_is_forbidden(self) -> None:
        # The legacy migration's status answers only keys of the tenant it migrates into ('default').
        with self.assertRaises(ForbiddenError) as raised:
            self.acme._transport.request("GET", "/v1/legacy")
        error = raised.exception
        self.assertEqual((error.status, error.code), (403, "forbidden"))
        self.assertIn("'acme'", error.message)
        self.assertIsInstance(error, ApiError)

    def test_a_body_over_the_limit_is_payload_too_large(self) -> None:
        session = f"big-{uuid.uuid4().hex[:8]}"
        with self.assertRaises(PayloadTooLargeError) as raised:
            self.acme.add_message(session, {"role": "user", "content": "x" * 70_000})
        self.assertEqual((raised.exception.status, raised.exception.code), (413, "payload_too_large"))
        self.assertIsInstance(raised.exception, ApiError)


class RateLimitTest(unittest.TestCase):
    """A service that allows 3 requests a minute: the 429 tells when to retry."""

    service: Service

    @classmethod
    def setUpClass(cls) -> None:
        cls.service = Service(Storage.embedded(), MEMORY_RATE_LIMIT_PER_MINUTE="3").start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.service.stop()

    def test_a_wait_longer_than_max_retry_after_is_raised_at_once(self) -> None:
        session = f"limited-{uuid.uuid4().hex[:8]}"
        with MemoryManager(self.service.url, retries=3, max_retry_after=5.0) as memory:
            for turn in range(3):
                memory.add_message(session, {"role": "user", "content": f"turn {turn}"})
            started = time.monotonic()
            with self.assertRaises(RateLimitedError) as raised:
                memory.add_message(session, {"role": "user", "content": "one too many"})
            self.assertLess(time.monotonic() - started, 2.0)
        error = raised.exception
        self.assertEqual((error.status, error.code), (429, "rate_limited"))
        self.assertIsNotNone(error.retry_after)
        self.assertGreater(error.retry_after or 0, 5.0)
        # /ready is outside the limit.
        with MemoryManager(self.service.url) as memory:
            self.assertTrue(memory.is_available())

"""Every method against the real service, in both deployments: the embedded default (PGlite, no
Redis) and Redis + PostgreSQL. Also the specification's snippets, retries under connections the
test breaks mid-request, keep-alive and threads."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import io
import os
import threading
import time
import unittest
import uuid
from collections.abc import Iterator
from typing import Any, Callable
from unittest import mock

import swisper_memory
from swisper_memory import (
    ConnectionFailedError,
    MemoryManager,
    NotFoundError,
    RequestTimeoutError,
    SwisperMemoryError,
    ValidationError,
)
from swisper_memory.asyncio import AsyncMemoryManager

from . import spec_snippets
from .support import BreakingProxy, ServiceContract, Storage, require_servers


def eventually(check: Callable[[], Any], seconds: float = 30.0) -> Any:
    """Polls ``check`` until it returns something truthy (summarization runs off the request path)."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


@dataclasses.dataclass
class LegacyContext:
    """Like the legacy SwisperContext: an object with ``to_dict()``."""

    session_id: str
    current_state: str
    preferences: dict[str, Any]
    updated: datetime.datetime

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ClientContract(ServiceContract):
    """The tests; each subclass starts the service on one deployment."""

    @contextlib.contextmanager
    def proxy(self, **client: Any) -> Iterator[Any]:
        broken = BreakingProxy(self.service.url)
        memory = MemoryManager(broken.url, **{"backoff": 0.01, **client})
        try:
            yield broken, memory
        finally:
            memory.close()
            broken.close()

    # MemoryManager

    def test_add_message_and_get_context(self) -> None:
        session = self.session("context")
        self.assertIs(self.memory.add_message(session, {"role": "user", "content": "I want to buy a laptop"}), True)
        self.memory.add_message(session, {"role": "assistant", "content": "What is your budget?", "id": "msg-2"})
        context = self.memory.get_context(session)
        for key in ("buffer_messages", "current_summary", "buffer_info", "total_tokens", "message_count"):
            self.assertIn(key, context)
        self.assertEqual(context["message_count"], 2)
        self.assertEqual(
            [m["content"] for m in context["buffer_messages"]], ["I want to buy a laptop", "What is your budget?"]
        )
        self.assertEqual(context["buffer_messages"][1]["id"], "msg-2")
        self.assertIsNone(context["current_summary"])
        self.assertEqual(context["buffer_info"]["source"], "redis" if self.name == "redis" else "database")
        self.assertNotIn("messages", context)

    def test_add_message_gives_an_id_and_leaves_the_callers_dict_alone(self) -> None:
        session = self.session("ids")
        message = {"role": "user", "content": "hello"}
        self.memory.add_message(session, message)
        self.assertEqual(message, {"role": "user", "content": "hello"})
        stored = self.memory.get_context(session)["buffer_messages"][0]
        self.assertEqual(str(uuid.UUID(stored["id"])), stored["id"])

    def test_add_messages_stores_a_batch_in_order_and_a_known_id_once(self) -> None:
        session = self.session("batch")
        batch = [
            {"role": "user", "content": "Hello", "id": "m-1"},
            {"role": "assistant", "content": "Hi! What are you looking for?"},
        ]
        self.assertEqual(
            self.memory.add_messages(session, batch),
            [{"seq": 1, "duplicate": False}, {"seq": 2, "duplicate": False}],
        )
        self.assertEqual(self.memory.add_messages(session, [batch[0]]), [{"seq": 1, "duplicate": True}])
        self.assertTrue(self.memory.add_message(session, batch[0]))
        self.assertEqual(self.memory.get_context(session)["message_count"], 2)

    def test_get_context_within_a_token_budget(self) -> None:
        session = self.session("budget")
        self.memory.add_messages(
            session, [{"role": "user", "content": f"Message {i}: light laptops"} for i in range(6)]
        )
        context = self.memory.get_context(session, max_tokens=30, model="gpt-4o")
        self.assertLessEqual(context["context_tokens"], 30)
        self.assertEqual(context["messages"][-1], {"role": "user", "content": "Message 5: light laptops"})
        self.assertGreater(len(self.memory.get_context(session, max_tokens=4000)["messages"]), len(context["messages"]))

    def test_save_and_load_context(self) -> None:
        session = self.session("swisper")
        self.assertIsNone(self.memory.load_context(session))
        self.assertIs(
            self.memory.save_context(session, {"current_state": "search", "preferences": {"budget": 1500}}), True
        )
        self.assertEqual(
            self.memory.load_context(session),
            {"current_state": "search", "preferences": {"budget": 1500}, "session_id": session},
        )
        legacy = LegacyContext(session, "compare", {"weight_kg": 1.2}, datetime.datetime(2026, 1, 2, 3, 4, 5))
        self.assertTrue(self.memory.save_context(session, legacy))
        loaded = self.memory.load_context(session)
        assert loaded is not None
        self.assertEqual(loaded["current_state"], "compare")
        self.assertEqual(loaded["updated"], "2026-01-02T03:04:05")
        with self.assertRaises(ValidationError) as raised:
            self.memory.save_context(session, 42)
        self.assertEqual(raised.exception.field, "context")

    def test_session_config(self) -> None:
        session = self.session("config")
        config = self.memory.set_session_config(session, {"summary_trigger_tokens": 2500, "max_buffer_tokens": 3500})
        self.assertEqual(config["summary_trigger_tokens"], 2500)
        self.assertEqual(config["keep_recent_tokens"], 1250)
        self.assertEqual(self.memory.get_session_config(session), config)
        with self.assertRaises(ValidationError) as raised:
            self.memory.set_session_config(session, {"colour": 1})
        self.assertEqual(raised.exception.field, "config.colour")

    def test_memory_stats(self) -> None:
        session = self.session("stats")
        self.memory.add_message(session, {"role": "user", "content": "hi"})
        stats = self.memory.get_memory_stats(session)
        self.assertEqual(stats["session_id"], session)
        self.assertEqual(stats["buffer"]["message_count"], 1)
        self.assertEqual(stats["redis"]["available"], self.name == "redis")
        for key in ("summary", "session_config", "token_cache", "available"):
            self.assertIn(key, stats)

    def test_clear_session_memory(self) -> None:
        session = self.session("clear")
        self.memory.add_message(session, {"role": "user", "content": "forget me"})
        self.memory.save_context(session, {"current_state": "x"})
        self.assertIs(self.memory.clear_session_memory(session), True)
        with self.assertRaises(NotFoundError):
            self.memory.get_context(session)
        self.assertIsNone(self.memory.load_context(session))
        # Nothing left to erase is done too (a retried erase lands here).
        self.assertIs(self.memory.clear_session_memory(session), True)

    def test_is_available(self) -> None:
        self.assertIs(self.memory.is_available(), True)

    def test_reads_of_a_session_never_written_raise_not_found(self) -> None:
        session = self.session("never")
        for read in (
            self.memory.get_context,
            self.memory.get_memory_stats,
            self.memory.get_session_config,
            self.memory.buffer_store.get_messages,
            self.memory.summary_store.get_summary_history,
        ):
            with self.assertRaises(NotFoundError, msg=read.__name__) as raised:
                read(session)
            self.assertEqual(raised.exception.status, 404)
            self.assertEqual(raised.exception.code, "not_found")

    def test_session_ids_are_percent_encoded(self) -> None:
        session = f"user 42/chat#1?ä-{uuid.uuid4().hex[:6]}"
        self.memory.add_message(session, {"role": "user", "content": "hi"})
        self.assertEqual(self.memory.get_context(session)["session_id"], session)

    # BufferStore

    def test_buffer_store(self) -> None:
        buffer = self.memory.buffer_store
        session = self.session("buffer")
        for turn in range(5):
            self.assertIs(buffer.add_message(session, {"role": "user", "content": f"Turn {turn}"}), True)
        self.assertEqual([m["content"] for m in buffer.get_messages(session, limit=2)], ["Turn 3", "Turn 4"])
        self.assertEqual(len(buffer.get_messages(session)), 5)
        self.assertEqual(buffer.get_messages(session, limit=0), [])
        info = buffer.get_buffer_info(session)
        self.assertEqual((info["message_count"], info["first_seq"], info["last_seq"]), (5, 1, 5))
        self.assertIs(buffer.should_trigger_summary(session), False)
        self.assertIs(buffer.should_trigger_summary(session, threshold=info["total_tokens"]), True)
        self.assertIs(buffer.clear_buffer(session), True)
        self.assertEqual(buffer.get_messages(session), [])
        self.assertEqual(buffer.get_buffer_info(session)["last_seq"], 5)
        self.assertEqual(self.memory.add_messages(session, [{"role": "user", "content": "Turn 5"}])[0]["seq"], 6)

    # SummaryStore

    def test_summary_store(self) -> None:
        summaries = self.memory.summary_store
        session = self.session("summaries")
        self.memory.add_message(session, {"role": "user", "content": "I need a light laptop"})
        self.assertIsNone(summaries.get_current_summary(session))
        self.assertEqual(summaries.get_summary_history(session), [])
        self.assertIs(summaries.add_summary(session, "The user wants a light laptop.", {"by": "test"}), True)
        self.assertIs(summaries.add_summary(session, "The user wants a light laptop under 1500 CHF."), True)
        self.assertEqual(summaries.get_current_summary(session), "The user wants a light laptop under 1500 CHF.")
        history = summaries.get_summary_history(session, limit=10)
        self.assertEqual([entry["version"] for entry in history], [2, 1])
        self.assertEqual(history[1]["metadata"], {"source": "add_summary", "by": "test"})
        self.assertEqual(len(summaries.get_summary_history(session, limit=1)), 1)
        stats = summaries.get_summary_stats(session)
        self.assertEqual((stats["summary_count"], stats["current_version"]), (2, 2))
        self.assertEqual(
            self.memory.get_context(session)["current_summary"], "The user wants a light laptop under 1500 CHF."
        )
        self.assertIs(summaries.clear_summaries(session), True)
        self.assertIsNone(summaries.get_current_summary(session))
        self.assertEqual(summaries.get_summary_stats(session)["summary_count"], 0)
        with self.assertRaises(ValidationError) as raised:
            summaries.add_summary(session, "")
        self.assertEqual(raised.exception.field, "summary_text")
        with self.assertRaises(ValidationError) as raised:
            summaries.get_summary_history(session, limit=0)
        self.assertEqual(raised.exception.field, "limit")

    def test_summaries_written_by_the_service(self) -> None:
        session = self.session("summarized")
        self.memory.set_session_config(
            session,
            {
                "summary_trigger_tokens": 120,
                "max_buffer_tokens": 400,
                "keep_recent_tokens": 40,
                "max_summary_tokens": 80,
            },
        )
        for turn in range(12):
            self.memory.add_messages(
                session,
                [
                    {"role": "user", "content": f"Turn {turn}: I compare laptops by weight, battery life and price."},
                    {"role": "assistant", "content": f"Turn {turn}: the ThinkPad X1 Carbon weighs 1.12 kg."},
                ],
            )
        self.assertTrue(eventually(lambda: self.memory.summary_store.get_current_summary(session)))
        self.assertGreater(self.memory.summary_store.get_summary_stats(session)["covered_seq"], 0)
        # Summarization may still be going on: the context shows a committed version.
        current = self.memory.get_context(session)["current_summary"]
        history = self.memory.summary_store.get_summary_history(session, limit=100)
        self.assertIn(current, [entry["summary_text"] for entry in history])

    # The specification's snippets

    @contextlib.contextmanager
    def default_client(self) -> Iterator[None]:
        """``memory_manager`` made from the environment, pointing at this deployment's service."""
        swisper_memory.memory_manager._reset()  # type: ignore[attr-defined]
        try:
            with mock.patch.dict(os.environ, {"SWISPER_MEMORY_URL": self.service.url}):
                yield
        finally:
            swisper_memory.memory_manager._reset()  # type: ignore[attr-defined]

    def test_the_specifications_orchestrator_snippet(self) -> None:
        session = self.session("orchestrator")
        with self.default_client():
            before = int(time.time())
            self.assertIsNone(spec_snippets.handle_user_message(session, "I want to buy a laptop"))
            spec_snippets.handle_user_message(session, "Under 1500 CHF, and light.")
        messages = self.memory.get_context(session)["buffer_messages"]
        self.assertEqual([m["content"] for m in messages], ["I want to buy a laptop", "Under 1500 CHF, and light."])
        self.assertTrue(all(m["role"] == "user" and m["timestamp"] >= before for m in messages))

    def test_the_specifications_session_store_wrapper(self) -> None:
        session = self.session("coexistence")
        with self.default_client():
            store = spec_snippets.EnhancedSessionStore()
            store.add_chat_message(session, {"role": "user", "content": "Hello"})
            store.memory_manager.close()
        self.assertEqual(self.memory.get_context(session)["message_count"], 1)
        self.assertEqual(store.legacy_store.messages, [{"session_id": session, "role": "user", "content": "Hello"}])

    def test_the_specifications_debug_commands(self) -> None:
        self.memory.add_message("session_id", {"role": "user", "content": "debug me"})
        with self.default_client(), contextlib.redirect_stdout(io.StringIO()) as printed:
            stats, buffer_info, messages = spec_snippets.debug_commands()
        self.assertEqual(printed.getvalue(), "Redis available: True\n")
        self.assertEqual(stats["session_id"], "session_id")
        self.assertGreaterEqual(buffer_info["message_count"], 1)
        self.assertIn("debug me", [m["content"] for m in messages])

    # Retries: connections the test breaks mid-request

    def assert_stored_once(self, session: str, contents: list[str]) -> None:
        messages = self.memory.get_context(session)["buffer_messages"]
        self.assertEqual([m["content"] for m in messages], contents)
        self.assertEqual([m["seq"] for m in messages], list(range(1, len(contents) + 1)))

    def test_an_answer_lost_after_the_service_stored_the_message_is_retried_and_stored_once(self) -> None:
        session = self.session("dropped")
        with self.proxy() as (broken, memory):
            memory.add_message(session, {"role": "user", "content": "first"})
            broken.drop_responses = 1
            self.assertIs(memory.add_message(session, {"role": "user", "content": "second"}), True)
            self.assertEqual(broken.broken, 1)
            broken.drop_responses = 1
            seqs = memory.add_messages(
                session, [{"role": "user", "content": "third"}, {"role": "assistant", "content": "fourth"}]
            )
        # The retry found both already stored: the same seqs, marked duplicate.
        self.assertEqual(seqs, [{"seq": 3, "duplicate": True}, {"seq": 4, "duplicate": True}])
        self.assert_stored_once(session, ["first", "second", "third", "fourth"])

    def test_a_request_lost_on_the_way_is_retried(self) -> None:
        session = self.session("lost-request")
        with self.proxy() as (broken, memory):
            broken.drop_requests = 2
            self.assertTrue(memory.add_message(session, {"role": "user", "content": "only once"}))
            self.assertEqual(broken.broken, 2)
        self.assert_stored_once(session, ["only once"])

    def test_a_connection_dropped_mid_request_is_retried_and_stores_once(self) -> None:
        session = self.session("cut")
        with self.proxy() as (broken, memory):
            broken.cut_requests = 1
            self.assertTrue(memory.add_message(session, {"role": "user", "content": "half " * 2000}))
            broken.cut_requests = 2
            seqs = memory.add_messages(
                session, [{"role": "user", "content": "again " * 1000}, {"role": "assistant", "content": "ok"}]
            )
            self.assertEqual(broken.broken, 3)
        self.assertEqual(seqs, [{"seq": 2, "duplicate": False}, {"seq": 3, "duplicate": False}])
        self.assert_stored_once(session, ["half " * 2000, "again " * 1000, "ok"])

    def test_an_answer_that_comes_too_late_is_retried_and_stored_once(self) -> None:
        session = self.session("timeout")
        with self.proxy(timeout=0.5) as (broken, memory):
            broken.hold_responses, broken.hold_seconds = 1, 2.0
            self.assertTrue(memory.add_message(session, {"role": "user", "content": "slow"}))
            self.assertEqual(broken.broken, 1)
        self.assert_stored_once(session, ["slow"])

    def test_a_write_whose_answer_never_comes_raises_after_the_retries(self) -> None:
        session = self.session("gives-up")
        with self.proxy(timeout=0.3, retries=2) as (broken, memory):
            broken.hold_responses, broken.hold_seconds = 3, 1.0
            with self.assertRaises(RequestTimeoutError) as raised:
                memory.add_message(session, {"role": "user", "content": "stubborn"})
            self.assertIn("3 attempts", str(raised.exception))
        self.assertIsInstance(raised.exception, ConnectionFailedError)
        self.assertIsInstance(raised.exception, SwisperMemoryError)
        # The service stored it (the answers were held, not the requests), once.
        eventually(lambda: self.memory.get_context(session)["message_count"] == 1, 5)
        self.assert_stored_once(session, ["stubborn"])

    def test_add_summary_is_not_sent_again_once_it_may_have_arrived(self) -> None:
        # Sent twice it would add two versions, and the client cannot tell a request lost on the
        # way from an answer lost on the way back: it raises, and the caller decides.
        session = self.session("summary-once")
        self.memory.add_message(session, {"role": "user", "content": "hi"})
        with self.proxy() as (broken, memory):
            broken.drop_responses = 1
            with self.assertRaises(ConnectionFailedError):
                memory.summary_store.add_summary(session, "Stored, but the answer was lost.")
            broken.drop_requests = 1
            with self.assertRaises(ConnectionFailedError):
                memory.summary_store.add_summary(session, "Lost on the way.")
            self.assertEqual(broken.broken, 2)
            self.assertTrue(memory.summary_store.add_summary(session, "Through."))
        history = self.memory.summary_store.get_summary_history(session)
        self.assertEqual([h["summary_text"] for h in history], ["Through.", "Stored, but the answer was lost."])

    # Connections

    def test_sequential_calls_share_one_keep_alive_connection(self) -> None:
        session = self.session("keep-alive")
        with self.proxy() as (broken, memory):
            for turn in range(5):
                memory.add_message(session, {"role": "user", "content": f"Turn {turn}"})
                memory.get_context(session)
            self.assertEqual(broken.connections, 1)

    def test_one_client_serves_many_threads(self) -> None:
        sessions = [self.session(f"thread-{n}") for n in range(8)]
        errors: list[BaseException] = []
        memory = MemoryManager(self.service.url, pool_size=4)

        def chat(session: str) -> None:
            try:
                for turn in range(10):
                    memory.add_message(session, {"role": "user", "content": f"{session} turn {turn}"})
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

        threads = [threading.Thread(target=chat, args=(session,)) for session in sessions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        try:
            self.assertEqual(errors, [])
            for session in sessions:
                self.assert_stored_once(session, [f"{session} turn {turn}" for turn in range(10)])
            self.assertLessEqual(memory._transport.idle_connections(), 4)
        finally:
            memory.close()

    def test_the_asyncio_client(self) -> None:
        session = self.session("asyncio")

        async def chat() -> dict[str, Any]:
            async with AsyncMemoryManager(self.service.url) as memory:
                self.assertTrue(await memory.is_available())
                await asyncio.gather(
                    *(
                        memory.add_message(session, {"role": "user", "content": f"m{n}", "id": f"m{n}"})
                        for n in range(20)
                    )
                )
                await memory.set_session_config(session, {"max_buffer_messages": 50})
                await memory.summary_store.add_summary(session, "Twenty messages.")
                self.assertEqual(len(await memory.buffer_store.get_messages(session, limit=5)), 5)
                with self.assertRaises(NotFoundError):
                    await memory.get_context(self.session("never"))
                return await memory.get_context(session)

        context = asyncio.run(chat())
        self.assertEqual(sorted(m["id"] for m in context["buffer_messages"]), sorted(f"m{n}" for n in range(20)))
        self.assertEqual(sorted(m["seq"] for m in context["buffer_messages"]), list(range(1, 21)))
        self.assertEqual(context["current_summary"], "Twenty messages.")

    # Errors

    def test_errors_are_typed(self) -> None:
        session = self.session("errors")
        with self.assertRaises(ValidationError) as raised:
            self.memory.add_message(session, {"role": "robot", "content": "hi"})
        error = raised.exception
        self.assertEqual((error.status, error.code, error.field), (400, "invalid_input", "message.role"))
        self.assertTrue(error.message.startswith("message.role: "))
        self.assertIsInstance(error, ValueError)
        self.assertTrue(error.request_id)
        with self.assertRaises(ValidationError) as raised:
            self.memory.add_messages(session, [{"role": "user", "content": "ok"}, {"role": "user"}])
        self.assertEqual(raised.exception.field, "messages[1].content")
        with self.assertRaises(NotFoundError):
            self.memory.get_context(session)  # nothing was stored
        with self.assertRaises(ValidationError) as raised:
            self.memory.get_context(session, model="gpt-4o")
        self.assertEqual(raised.exception.field, "max_tokens")
        # Checked before sending: a session id that is not text, a value JSON cannot hold.
        with self.assertRaises(ValidationError) as raised:
            self.memory.add_message(42, {"role": "user", "content": "x"})  # type: ignore[arg-type]
        self.assertEqual((raised.exception.field, raised.exception.status), ("session_id", None))
        with self.assertRaises(ValidationError) as raised:
            self.memory.add_message(session, {"role": "user", "content": object()})
        self.assertEqual(raised.exception.field, "message")

    def test_an_unreachable_service(self) -> None:
        from .support import free_port

        memory = MemoryManager(f"http://127.0.0.1:{free_port()}", retries=2, backoff=0.01)
        self.assertIs(memory.is_available(), False)
        with self.assertRaises(ConnectionFailedError) as raised:
            memory.add_message(self.session("nowhere"), {"role": "user", "content": "hello?"})
        self.assertIn("3 attempts", str(raised.exception))
        self.assertIs(MemoryManager("http://no-such-host.invalid", retries=0).is_available(), False)


class EmbeddedDeploymentTest(ClientContract, unittest.TestCase):
    """No DATABASE_URL, no REDIS_URL: the service's embedded PostgreSQL (PGlite)."""

    name = "embedded"

    @classmethod
    def make_storage(cls) -> Storage:
        return Storage.embedded()


class RedisPostgresDeploymentTest(ClientContract, unittest.TestCase):
    """Redis (a key prefix of its own) and PostgreSQL (a fresh database)."""

    name = "redis"

    @classmethod
    def setUpClass(cls) -> None:
        require_servers()
        super().setUpClass()

    @classmethod
    def make_storage(cls) -> Storage:
        return Storage.redis_and_postgres()

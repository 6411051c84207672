"""The sessions-as-data methods against the real service, in both deployments: listing, records,
transcript, search, erasing a user, export and import."""

from __future__ import annotations

import asyncio
import datetime
import unittest
import uuid
from typing import Any

from swisper_memory import ConflictError, NotFoundError, ValidationError
from swisper_memory.asyncio import AsyncMemoryManager

from .support import ServiceContract, Storage, require_servers

class SessionsContract(ServiceContract):
    """The tests; each subclass starts the service on one deployment."""

    def chat(self, session: str, *contents: str) -> None:
        self.memory.add_messages(session, [{"role": "user", "content": content} for content in contents])

    def test_list_and_iterate_sessions_of_a_user(self) -> None:
        user = f"user-{uuid.uuid4().hex[:8]}"
        sessions = [self.session(f"list{n}") for n in range(3)]
        for session in sessions:
            self.chat(session, f"Hello from {session}")
            self.memory.update_session(session, user_id=user)
        page = self.memory.list_sessions(limit=2, order="created_desc", user_id=user)
        self.assertEqual([s["session_id"] for s in page["sessions"]], [sessions[2], sessions[1]])
        self.assertIsNotNone(page["next_cursor"])
        rest = self.memory.list_sessions(limit=2, order="created_desc", user_id=user, cursor=page["next_cursor"])
        self.assertEqual([s["session_id"] for s in rest["sessions"]], [sessions[0]])
        self.assertIsNone(rest["next_cursor"])
        listed = list(self.memory.iter_sessions(page_size=1, order="created_desc", user_id=user))
        self.assertEqual([s["session_id"] for s in listed], sessions[::-1])
        since = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        self.assertEqual(self.memory.list_sessions(user_id=user, updated_since=since)["sessions"], [])
        with self.assertRaises(ValidationError) as raised:
            self.memory.list_sessions(limit=0)
        self.assertEqual(raised.exception.field, "limit")

    def test_get_and_update_a_session(self) -> None:
        session = self.session("record")
        self.assertIsNone(self.memory.get_session(session))
        self.assertIsNone(self.memory.update_session(session, title="Before any message"))
        self.chat(session, "Which laptop is lightest?")
        self.assertEqual(self.memory.get_session(session)["title"], "Which laptop is lightest?")
        updated = self.memory.update_session(session, title="Laptops", user_id="u-1", metadata={"channel": "web"})
        self.assertEqual((updated["title"], updated["user_id"], updated["metadata"]), ("Laptops", "u-1", {"channel": "web"}))
        # A keyword left out keeps its value; None clears.
        cleared = self.memory.update_session(session, title=None)
        self.assertEqual((cleared["title"], cleared["user_id"]), ("Which laptop is lightest?", "u-1"))
        with self.assertRaises(ValidationError) as raised:
            self.memory.update_session(session, metadata=[1, 2])  # type: ignore[arg-type]
        self.assertEqual(raised.exception.field, "metadata")

    def test_transcript_pages_and_iterator(self) -> None:
        session = self.session("transcript")
        self.chat(session, *(f"Message {n}" for n in range(7)))
        page = self.memory.get_transcript(session, limit=3)
        self.assertEqual([m["seq"] for m in page["messages"]], [1, 2, 3])
        self.assertEqual(page["next_after_seq"], 3)
        last = self.memory.get_transcript(session, after_seq=6, limit=3)
        self.assertEqual(([m["content"] for m in last["messages"]], last["next_after_seq"]), (["Message 6"], None))
        messages = list(self.memory.iter_transcript(session, page_size=2))
        self.assertEqual([m["seq"] for m in messages], list(range(1, 8)))
        self.assertTrue(all(m["summarized"] is False and m["tokens"] > 0 for m in messages))
        with self.assertRaises(NotFoundError):
            self.memory.get_transcript(self.session("never"))

    def test_search_messages(self) -> None:
        session = self.session("search")
        word = f"zebra{uuid.uuid4().hex[:6]}"
        self.chat(session, f"Ich suche einen {word} Laptop", "Something else")
        found = self.memory.search_messages(word)
        self.assertEqual([(hit["session_id"], hit["seq"]) for hit in found["results"]], [(session, 1)])
        self.assertIn("<mark>", found["results"][0]["snippet"])
        self.assertEqual(self.memory.search_messages(word, role="assistant")["results"], [])
        with self.assertRaises(ValidationError) as raised:
            self.memory.search_messages("!!!")
        self.assertEqual(raised.exception.field, "q")
        # Substring mode finds the text as typed, inside a word too.
        inside = self.memory.search_messages(word[2:9], mode="substring")
        self.assertEqual([(hit["session_id"], hit["seq"]) for hit in inside["results"]], [(session, 1)])
        with self.assertRaises(ValidationError) as raised:
            self.memory.search_messages(word, language="klingon")
        self.assertEqual(raised.exception.field, "language")

    def test_erase_user(self) -> None:
        user = f"leaving-{uuid.uuid4().hex[:8]}"
        sessions = [self.session(f"erase{n}") for n in range(2)]
        for session in sessions:
            self.chat(session, "Forget me", "and this")
            self.memory.update_session(session, user_id=user)
        self.assertEqual(
            self.memory.erase_user(user), {"user_id": user, "sessions_erased": 2, "messages_erased": 4}
        )
        for session in sessions:
            self.assertIsNone(self.memory.get_session(session))
        self.assertEqual(self.memory.erase_user(user)["sessions_erased"], 0)

    def test_export_and_import(self) -> None:
        session = self.session("export")
        self.chat(session, "Zürich → 東京", "bitte")
        self.memory.save_context(session, {"current_state": "booking"})
        lines = list(self.memory.export_session(session))
        self.assertEqual(
            [line["type"] for line in lines], ["export", "session", "message", "message", "context", "end"]
        )
        self.assertEqual(lines[2]["message"]["content"], "Zürich → 東京")
        self.memory.clear_session_memory(session)
        totals = self.memory.import_sessions(lines)
        self.assertEqual((totals["sessions_imported"], totals["messages_imported"]), (1, 2))
        self.assertEqual(list(self.memory.export_session(session)), lines)
        self.assertEqual(self.memory.import_sessions(lines)["sessions_unchanged"], 1)
        self.chat(session, "one more")
        with self.assertRaises(ConflictError) as conflict:
            self.memory.import_sessions(lines)
        self.assertEqual((conflict.exception.status, conflict.exception.code), (409, "import_conflict"))
        bad = [dict(line) for line in lines]
        bad[1] = {**bad[1], "session_id": self.session("bad"), "message_count": "two"}
        with self.assertRaises(ValidationError) as raised:
            self.memory.import_sessions(bad)
        self.assertEqual(raised.exception.field, "message_count")
        self.assertTrue(raised.exception.message.startswith("line 2: message_count: "))
        with self.assertRaises(NotFoundError):
            self.memory.export_session(self.session("never"))

    def test_the_asyncio_methods(self) -> None:
        session = self.session("async")
        self.chat(session, "Async hello", "again")

        async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any] | None]:
            async with AsyncMemoryManager(self.service.url) as memory:
                await memory.update_session(session, title="Async")
                messages = [m async for m in memory.iter_transcript(session, page_size=1)]
                lines = [line async for line in memory.export_session(session)]
                return messages, lines, await memory.get_session(session)

        messages, lines, record = asyncio.run(run())
        self.assertEqual([m["content"] for m in messages], ["Async hello", "again"])
        self.assertEqual(lines[-1], {"type": "end", "sessions": 1, "messages": 2})
        self.assertEqual(record["title"] if record else None, "Async")


class EmbeddedSessionsTest(SessionsContract, unittest.TestCase):
    """The service's embedded PostgreSQL (PGlite), no Redis."""

    name = "embedded"

    @classmethod
    def make_storage(cls) -> Storage:
        return Storage.embedded()


class RedisPostgresSessionsTest(SessionsContract, unittest.TestCase):
    """Redis (a key prefix of its own) and PostgreSQL (a fresh database)."""

    name = "redis"

    @classmethod
    def setUpClass(cls) -> None:
        require_servers()
        super().setUpClass()

    @classmethod
    def make_storage(cls) -> Storage:
        return Storage.redis_and_postgres()

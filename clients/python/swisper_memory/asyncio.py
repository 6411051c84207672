"""The same client for asyncio code: every method is a coroutine.

Each call runs the blocking client in a worker thread (``asyncio.to_thread``), so the event loop
never waits on the network; the calls share the client's thread-safe connection pool, retries and
errors. (The standard library has no asynchronous HTTP client to build on instead.)

    from swisper_memory.asyncio import AsyncMemoryManager

    async with AsyncMemoryManager() as memory_manager:
        await memory_manager.add_message("session_123", {"role": "user", "content": "Hi"})
        context = await memory_manager.get_context("session_123")
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, Callable

from .client import _UNSET, BufferStore, ExportLines, MemoryManager, Message, SummaryStore

__all__ = ["AsyncBufferStore", "AsyncMemoryManager", "AsyncSummaryStore"]


async def _iterate(make: Callable[[], Iterator[dict[str, Any]]]) -> AsyncIterator[dict[str, Any]]:
    """A blocking iterator, each step (a page, a line) in a worker thread."""
    iterator = await asyncio.to_thread(make)
    done = object()
    while True:
        item = await asyncio.to_thread(next, iterator, done)
        if item is done:
            return
        yield item


class AsyncBufferStore:
    """``BufferStore``, awaitable."""

    def __init__(self, store: BufferStore) -> None:
        self._store = store

    async def add_message(self, session_id: str, message: Message) -> bool:
        return await asyncio.to_thread(self._store.add_message, session_id, message)

    async def get_messages(self, session_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._store.get_messages, session_id, limit)

    async def get_buffer_info(self, session_id: str) -> dict[str, Any]:
        return await asyncio.to_thread(self._store.get_buffer_info, session_id)

    async def should_trigger_summary(self, session_id: str, threshold: int = 3000) -> bool:
        return await asyncio.to_thread(self._store.should_trigger_summary, session_id, threshold)

    async def clear_buffer(self, session_id: str) -> bool:
        return await asyncio.to_thread(self._store.clear_buffer, session_id)


class AsyncSummaryStore:
    """``SummaryStore``, awaitable."""

    def __init__(self, store: SummaryStore) -> None:
        self._store = store

    async def add_summary(self, session_id: str, summary_text: str, metadata: dict[str, Any] | None = None) -> bool:
        return await asyncio.to_thread(self._store.add_summary, session_id, summary_text, metadata)

    async def get_current_summary(self, session_id: str) -> str | None:
        return await asyncio.to_thread(self._store.get_current_summary, session_id)

    async def get_summary_history(self, session_id: str, limit: int = 10) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._store.get_summary_history, session_id, limit)

    async def get_summary_stats(self, session_id: str) -> dict[str, Any]:
        return await asyncio.to_thread(self._store.get_summary_stats, session_id)

    async def clear_summaries(self, session_id: str) -> bool:
        return await asyncio.to_thread(self._store.clear_summaries, session_id)


class AsyncMemoryManager:
    """``MemoryManager``, awaitable: the same arguments (see there), the same results and errors."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 5.0,
        retries: int = 3,
        **options: Any,
    ) -> None:
        self._memory = MemoryManager(base_url, api_key, timeout, retries, **options)
        self.buffer_store = AsyncBufferStore(self._memory.buffer_store)
        self.summary_store = AsyncSummaryStore(self._memory.summary_store)

    @property
    def base_url(self) -> str:
        return self._memory.base_url

    async def __aenter__(self) -> AsyncMemoryManager:
        return self

    async def __aexit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the idle connections (it does not block)."""
        self._memory.close()

    async def add_message(self, session_id: str, message: Message) -> bool:
        return await asyncio.to_thread(self._memory.add_message, session_id, message)

    async def add_messages(self, session_id: str, messages: Sequence[Message]) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._memory.add_messages, session_id, messages)

    async def get_context(
        self, session_id: str, max_tokens: int | None = None, model: str | None = None
    ) -> dict[str, Any]:
        return await asyncio.to_thread(self._memory.get_context, session_id, max_tokens, model)

    async def save_context(self, session_id: str, context: Any) -> bool:
        return await asyncio.to_thread(self._memory.save_context, session_id, context)

    async def load_context(self, session_id: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._memory.load_context, session_id)

    async def set_session_config(self, session_id: str, config: Mapping[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(self._memory.set_session_config, session_id, config)

    async def get_session_config(self, session_id: str) -> dict[str, Any]:
        return await asyncio.to_thread(self._memory.get_session_config, session_id)

    async def get_memory_stats(self, session_id: str) -> dict[str, Any]:
        return await asyncio.to_thread(self._memory.get_memory_stats, session_id)

    async def clear_session_memory(self, session_id: str) -> bool:
        return await asyncio.to_thread(self._memory.clear_session_memory, session_id)

    async def is_available(self) -> bool:
        return await asyncio.to_thread(self._memory.is_available)

    # Sessions as data

    async def list_sessions(
        self,
        limit: int | None = None,
        cursor: str | None = None,
        order: str | None = None,
        user_id: str | None = None,
        updated_since: datetime.datetime | str | None = None,
    ) -> dict[str, Any]:
        return await asyncio.to_thread(self._memory.list_sessions, limit, cursor, order, user_id, updated_since)

    def iter_sessions(
        self,
        page_size: int = 100,
        order: str | None = None,
        user_id: str | None = None,
        updated_since: datetime.datetime | str | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every session of the tenant: ``async for session in memory.iter_sessions(): ...``."""
        return _iterate(lambda: self._memory.iter_sessions(page_size, order, user_id, updated_since))

    async def get_session(self, session_id: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._memory.get_session, session_id)

    async def update_session(
        self,
        session_id: str,
        *,
        title: str | None = _UNSET,
        user_id: str | None = _UNSET,
        metadata: Mapping[str, Any] | None = _UNSET,
    ) -> dict[str, Any] | None:
        return await asyncio.to_thread(
            lambda: self._memory.update_session(session_id, title=title, user_id=user_id, metadata=metadata)
        )

    async def get_transcript(self, session_id: str, after_seq: int = 0, limit: int = 100) -> dict[str, Any]:
        return await asyncio.to_thread(self._memory.get_transcript, session_id, after_seq, limit)

    def iter_transcript(self, session_id: str, page_size: int = 1000) -> AsyncIterator[dict[str, Any]]:
        """Every message of the transcript: ``async for message in memory.iter_transcript(id): ...``."""
        return _iterate(lambda: self._memory.iter_transcript(session_id, page_size))

    async def search_messages(
        self,
        q: str,
        session_id: str | None = None,
        user_id: str | None = None,
        role: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        mode: str | None = None,
        language: str | None = None,
    ) -> dict[str, Any]:
        return await asyncio.to_thread(
            self._memory.search_messages, q, session_id, user_id, role, limit, cursor, mode, language
        )

    async def erase_user(self, user_id: str) -> dict[str, Any]:
        return await asyncio.to_thread(self._memory.erase_user, user_id)

    def export_session(self, session_id: str) -> AsyncIterator[dict[str, Any]]:
        """The session's export, a dict per line: ``async for line in memory.export_session(id): ...``
        (NotFoundError on the first step for a session with no memory)."""
        return _iterate(lambda: self._memory.export_session(session_id))

    async def import_sessions(self, lines: ExportLines) -> dict[str, Any]:
        return await asyncio.to_thread(self._memory.import_sessions, lines)

"""The Memory Manager API specification's MemoryManager, BufferStore and SummaryStore, over the
Swisper Memory HTTP service.

Methods keep the specification's snake_case names, arguments and return shapes; the dictionaries
are the service's JSON, which is the TypeScript library's own shapes.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Union
from urllib.parse import quote

from ._transport import Transport
from .errors import NotFoundError, ValidationError

__all__ = ["BufferStore", "MemoryManager", "SummaryStore", "DEFAULT_URL"]

#: Where ``swisper-memory serve`` listens by default.
DEFAULT_URL = "http://127.0.0.1:8080"

Message = Mapping[str, Any]

#: Lines of an export: one JSON object per line, as dicts, text or bytes (or a whole file's text or bytes).
ExportLines = Union[str, bytes, Iterable[Union[Mapping[str, Any], str, bytes]]]


class _Unset:
    """A keyword left out (None is a value: it clears a title or a user)."""

    def __repr__(self) -> str:
        return "UNSET"


_UNSET: Any = _Unset()


def _json_default(value: Any) -> Any:
    """What ``json`` cannot write itself but a caller's data often holds."""
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not representable as JSON")


def _encode(body: Any, field: str) -> bytes:
    """JSON bytes; a value JSON cannot hold is a ValidationError naming ``field``, sent nowhere."""
    try:
        text = json.dumps(body, ensure_ascii=False, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as error:
        raise ValidationError(f"{field}: {error}", code="invalid_input", field=field) from error
    return text.encode("utf-8")


def _with_id(message: Any) -> Any:
    """The message with an idempotency ``id`` (a new UUID when it has none), the caller's untouched.

    The id is what makes a retry safe: the service stores a message with a known id once.
    """
    if not isinstance(message, Mapping):
        return message  # the service names what is wrong with it
    if message.get("id") is None:
        return {**message, "id": str(uuid.uuid4())}
    return dict(message)


def _as_dict(context: Any) -> Any:
    """A SwisperContext as a dict: a mapping, or an object with ``to_dict()`` (the legacy
    SwisperContext), ``model_dump()`` (pydantic) or a dataclass."""
    if isinstance(context, Mapping):
        return dict(context)
    for method in ("to_dict", "model_dump"):
        convert = getattr(context, method, None)
        if callable(convert):
            return convert()
    if dataclasses.is_dataclass(context) and not isinstance(context, type):
        return dataclasses.asdict(context)
    raise ValidationError(
        f"context: must be a dict or an object with to_dict() (got {type(context).__name__})",
        code="invalid_input",
        field="context",
    )


def _text_id(value: Any, field: str) -> str:
    """A path segment: the id as text, URL-encoded; anything else is a ValidationError naming ``field``."""
    if not isinstance(value, str):
        raise ValidationError(
            f"{field}: must be a string (got {type(value).__name__})", code="invalid_input", field=field
        )
    return quote(value, safe="")


def _time(value: Any) -> Any:
    """A datetime as ISO 8601 (a naive one is refused by the service: it names no time zone)."""
    return value.isoformat() if isinstance(value, datetime.datetime) else value


def _export_bytes(lines: ExportLines) -> bytes:
    """An import body: the lines joined, each dict written as JSON."""
    if isinstance(lines, bytes):
        return lines
    if isinstance(lines, str):
        return lines.encode("utf-8")
    parts: list[bytes] = []
    for index, line in enumerate(lines):
        if isinstance(line, Mapping):
            parts.append(_encode(dict(line), f"lines[{index}]"))
        elif isinstance(line, str):
            parts.append(line.rstrip("\n").encode("utf-8"))
        elif isinstance(line, bytes):
            parts.append(line.rstrip(b"\n"))
        else:
            raise ValidationError(
                f"lines[{index}]: must be a dict, str or bytes (got {type(line).__name__})",
                code="invalid_input",
                field=f"lines[{index}]",
            )
    return b"\n".join(parts) + b"\n"


def _unless_no_route(error: NotFoundError) -> None:
    """Raises a 404 that is about the route, not the session: a service older than this client."""
    if error.message.startswith("no route "):
        raise error


class _Resource:
    """What the client and its stores share: the transport, and the session paths."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    @staticmethod
    def _path(session_id: str, part: str = "") -> str:
        if not isinstance(session_id, str):
            raise ValidationError(
                f"session_id: must be a string (got {type(session_id).__name__})",
                code="invalid_input",
                field="session_id",
            )
        path = "/v1/sessions/" + quote(session_id, safe="")
        return f"{path}/{part}" if part else path

    def _call(self, method: str, session_id: str, part: str = "", **options: Any) -> dict[str, Any]:
        """The answer's JSON object ({} for a 204)."""
        answer = self._transport.request(method, self._path(session_id, part), **options)
        body: dict[str, Any] | None = answer.body
        return body or {}

    def _delete(self, session_id: str, part: str = "") -> bool:
        """A DELETE that is done when the session has nothing there: a 404 (no such session, or a
        retry of a delete that went through) is success too."""
        try:
            self._call("DELETE", session_id, part)
        except NotFoundError as error:
            _unless_no_route(error)
        return True

    def _add_one(self, session_id: str, message: Message) -> list[dict[str, Any]]:
        return self._post_messages(session_id, _with_id(message), "message")

    def _add_many(self, session_id: str, messages: Sequence[Message]) -> list[dict[str, Any]]:
        batch = [messages] if isinstance(messages, Mapping) else messages
        return self._post_messages(session_id, {"messages": [_with_id(message) for message in batch]}, "messages")

    def _post_messages(self, session_id: str, body: Any, field: str) -> list[dict[str, Any]]:
        """Where each message landed: ``[{"seq": 7, "duplicate": False}, ...]``."""
        answer = self._call("POST", session_id, "messages", payload=_encode(body, field))
        landed: list[dict[str, Any]] = answer["messages"]
        return landed


class BufferStore(_Resource):
    """The specification's BufferStore: the recent messages of each session within its caps."""

    def add_message(self, session_id: str, message: Message) -> bool:
        """Adds one message (given an idempotency ``id`` when it has none); True once it is stored."""
        self._add_one(session_id, message)
        return True

    def get_messages(self, session_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` messages of the buffer (all when None), oldest first."""
        messages: list[dict[str, Any]] = self._call("GET", session_id, "buffer", query={"limit": limit})["messages"]
        return messages

    def get_buffer_info(self, session_id: str) -> dict[str, Any]:
        """The buffer's metadata: message_count, total_tokens, ttl_remaining, caps, seqs, source."""
        info: dict[str, Any] = self._call("GET", session_id, "buffer", query={"limit": 0})["buffer_info"]
        return info

    def should_trigger_summary(self, session_id: str, threshold: int = 3000) -> bool:
        """True when the buffer holds at least ``threshold`` tokens."""
        return bool(self.get_buffer_info(session_id)["total_tokens"] >= threshold)

    def clear_buffer(self, session_id: str) -> bool:
        """Empties the buffer; the transcript keeps the messages (and they are summarized from it)."""
        return self._delete(session_id, "buffer")


class SummaryStore(_Resource):
    """The specification's SummaryStore: each session's summary versions."""

    def add_summary(self, session_id: str, summary_text: str, metadata: dict[str, Any] | None = None) -> bool:
        """Adds a version that becomes the current summary without covering new messages. False when
        a summarization step committed a version meanwhile (nothing was written).

        Unlike every other write, sending it twice would add two versions: it is retried only when
        it cannot have reached the service (no connection, 429, 503).
        """
        body: dict[str, Any] = {"summary_text": summary_text}
        if metadata is not None:
            body["metadata"] = metadata
        # With a text, what JSON cannot hold is in the metadata.
        payload = _encode(body, "metadata" if isinstance(summary_text, str) else "summary_text")
        answer = self._call("POST", session_id, "summaries", payload=payload, idempotent=False)
        return bool(answer["added"])

    def get_current_summary(self, session_id: str) -> str | None:
        """The current summary's text, or None before the first."""
        summaries = self.get_summary_history(session_id, limit=1)
        return summaries[0]["summary_text"] if summaries else None

    def get_summary_history(self, session_id: str, limit: int = 10) -> list[dict[str, Any]]:
        """The newest ``limit`` versions (1-100), newest first, each with its time and the seq range
        it covers."""
        versions: list[dict[str, Any]] = self._call("GET", session_id, "summaries", query={"limit": limit})["summaries"]
        return versions

    def get_summary_stats(self, session_id: str) -> dict[str, Any]:
        """summary_count, current_version, covered_seq, current_tokens, merge_count and times."""
        stats: dict[str, Any] = self._call("GET", session_id, "stats")["summary"]
        return stats

    def clear_summaries(self, session_id: str) -> bool:
        """Deletes every version; the messages they covered count as unsummarized again."""
        return self._delete(session_id, "summaries")


class MemoryManager(_Resource):
    """The specification's MemoryManager, as a client of a Swisper Memory service.

    ``base_url`` defaults to ``SWISPER_MEMORY_URL`` (else http://127.0.0.1:8080) and ``api_key`` to
    ``SWISPER_MEMORY_API_KEY`` (none: the service runs without keys). ``timeout`` bounds the
    connection and each wait for an answer, in seconds; ``retries`` is how often a request is sent
    again after a connection error, a timeout, a 429 or a 503 (never after another error).
    Keyword-only: ``pool_size`` (idle keep-alive connections kept), ``backoff`` (first wait between
    retries, in seconds, doubling) and ``max_retry_after`` (a 429 or 503 asking to wait longer is
    raised at once instead).

    One instance is safe to share between threads; ``close()`` (or ``with``) closes its connections.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 5.0,
        retries: int = 3,
        *,
        pool_size: int = 10,
        backoff: float = 0.1,
        max_retry_after: float = 30.0,
    ) -> None:
        url = base_url or os.environ.get("SWISPER_MEMORY_URL") or DEFAULT_URL
        key = api_key if api_key is not None else os.environ.get("SWISPER_MEMORY_API_KEY")
        super().__init__(Transport(url, key or None, timeout, retries, pool_size, backoff, max_retry_after))
        self.buffer_store = BufferStore(self._transport)
        self.summary_store = SummaryStore(self._transport)

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    def __repr__(self) -> str:
        return f"MemoryManager(base_url={self.base_url!r})"

    def __enter__(self) -> MemoryManager:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the idle connections; requests still running close theirs when they end."""
        self._transport.close()

    def add_message(self, session_id: str, message: Message) -> bool:
        """Adds one message; True once it is stored (in PostgreSQL). A message without an ``id``
        gets one (a UUID), so that a retry never stores it twice; the caller's dict is not changed."""
        return self.buffer_store.add_message(session_id, message)

    def add_messages(self, session_id: str, messages: Sequence[Message]) -> list[dict[str, Any]]:
        """Adds 1 to 1000 messages in order, in one request; returns where each landed:
        ``[{"seq": 7, "duplicate": False}, ...]`` (``duplicate``: its id was stored before)."""
        return self._add_many(session_id, messages)

    def get_context(self, session_id: str, max_tokens: int | None = None, model: str | None = None) -> dict[str, Any]:
        """buffer_messages, current_summary, buffer_info, total_tokens and message_count; with
        ``max_tokens`` (and ``model``), ``messages`` (an OpenAI message list within the budget) and
        ``context_tokens`` in place of ``buffer_messages``."""
        return self._call("GET", session_id, "context", query={"max_tokens": max_tokens, "model": model})

    def save_context(self, session_id: str, context: Any) -> bool:
        """Saves the orchestrator's SwisperContext: a dict, or an object with ``to_dict()``."""
        self._call("PUT", session_id, "swisper-context", payload=_encode(_as_dict(context), "context"))
        return True

    def load_context(self, session_id: str) -> dict[str, Any] | None:
        """The SwisperContext last saved, or None."""
        try:
            return self._call("GET", session_id, "swisper-context")
        except NotFoundError as error:
            _unless_no_route(error)
            return None

    def set_session_config(self, session_id: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """Sets some of the session's settings (summary_trigger_tokens, max_buffer_tokens, ...);
        returns the whole config."""
        payload = _encode(dict(config) if isinstance(config, Mapping) else config, "config")
        return self._call("PUT", session_id, "config", payload=payload)

    def get_session_config(self, session_id: str) -> dict[str, Any]:
        """The session's whole config: its settings over the defaults."""
        return self._call("GET", session_id, "config")

    def get_memory_stats(self, session_id: str) -> dict[str, Any]:
        """Buffer, summary, Redis, config and token-cache figures for the session."""
        return self._call("GET", session_id, "stats")

    def clear_session_memory(self, session_id: str) -> bool:
        """Erases the session everywhere. True once it has no memory (also when it had none)."""
        return self._delete(session_id)

    # Sessions as data

    def list_sessions(
        self,
        limit: int | None = None,
        cursor: str | None = None,
        order: str | None = None,
        user_id: str | None = None,
        updated_since: datetime.datetime | str | None = None,
    ) -> dict[str, Any]:
        """One page of the tenant's sessions: ``{"sessions": [...], "next_cursor": ...}``. ``limit``
        1-100 (default 20); ``order`` "updated_desc" (default) or "created_desc" (stable while
        writes go on); ``cursor`` is the previous page's ``next_cursor`` (None on the last page)."""
        query = {
            "limit": limit,
            "cursor": cursor,
            "order": order,
            "user_id": user_id,
            "updated_since": _time(updated_since),
        }
        page: dict[str, Any] = self._transport.request("GET", "/v1/sessions", query=query).body
        return page

    def iter_sessions(
        self,
        page_size: int = 100,
        order: str | None = None,
        user_id: str | None = None,
        updated_since: datetime.datetime | str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every session of the tenant, a page at a time (see ``list_sessions``)."""
        cursor: str | None = None
        while True:
            page = self.list_sessions(page_size, cursor, order, user_id, updated_since)
            yield from page["sessions"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def get_session(self, session_id: str) -> dict[str, Any] | None:
        """The session's record (title, user_id, counts, times) and metadata; None before its first message."""
        try:
            return self._call("GET", session_id)
        except NotFoundError as error:
            _unless_no_route(error)
            return None

    def update_session(
        self,
        session_id: str,
        *,
        title: str | None = _UNSET,
        user_id: str | None = _UNSET,
        metadata: Mapping[str, Any] | None = _UNSET,
    ) -> dict[str, Any] | None:
        """Sets the keywords given: ``title`` (None: back to the default title), ``user_id`` (None:
        none), ``metadata`` (a dict of at most 16 KiB as JSON; replaces the stored one). Returns the
        session, or None when it has no record yet (no message)."""
        patch = {
            name: dict(value) if isinstance(value, Mapping) else value
            for name, value in (("title", title), ("user_id", user_id), ("metadata", metadata))
            if value is not _UNSET
        }
        try:
            return self._call("PATCH", session_id, payload=_encode(patch, "patch"))
        except NotFoundError as error:
            _unless_no_route(error)
            return None

    def get_transcript(self, session_id: str, after_seq: int = 0, limit: int = 100) -> dict[str, Any]:
        """Every message ever written (summarized ones too), in seq order, a page at a time: those
        after ``after_seq``, at most ``limit`` (1-1000), each with ``seq``, ``tokens`` and
        ``summarized``. ``next_after_seq`` continues (None on the last page). NotFoundError for a
        session with no memory."""
        return self._call("GET", session_id, "messages", query={"after_seq": after_seq, "limit": limit})

    def iter_transcript(self, session_id: str, page_size: int = 1000) -> Iterator[dict[str, Any]]:
        """Every message of the transcript, oldest first, a page at a time."""
        after_seq = 0
        while True:
            page = self.get_transcript(session_id, after_seq, page_size)
            yield from page["messages"]
            if page["next_after_seq"] is None:
                return
            after_seq = page["next_after_seq"]

    def search_messages(
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
        """Search of the tenant's messages: ``mode="words"`` (the default: full text, all words;
        "a phrase"; ``or``; -word; most relevant first; ``language`` a text search configuration)
        or ``mode="substring"`` (the text as typed). ``{"results": [{session_id, seq, role,
        snippet, rank, created_at}], "next_cursor", "scan_limited"}``."""
        query = {
            "q": q,
            "session_id": session_id,
            "user_id": user_id,
            "role": role,
            "limit": limit,
            "cursor": cursor,
            "mode": mode,
            "language": language,
        }
        results: dict[str, Any] = self._transport.request("GET", "/v1/search", query=query).body
        return results

    def erase_user(self, user_id: str) -> dict[str, Any]:
        """Erases every session of the user everywhere: ``{"user_id", "sessions_erased", "messages_erased"}``."""
        path = "/v1/users/" + _text_id(user_id, "user_id")
        erased: dict[str, Any] = self._transport.request("DELETE", path).body
        return erased

    def export_session(self, session_id: str) -> Iterator[dict[str, Any]]:
        """The session's export, one dict per line as the service streams it: the header, the
        session's record, its messages, summary versions, config and SwisperContext, the end line.
        NotFoundError (raised here, before iterating) for a session with no memory."""
        lines = self._transport.lines(self._path(session_id, "export"))
        return (json.loads(line) for line in lines)

    def import_sessions(self, lines: ExportLines) -> dict[str, Any]:
        """Restores an export (the dicts ``export_session`` yields, or a file's text or bytes) into
        this key's tenant, exactly; a session already stored with the same content is left alone.
        Returns the totals. A bad line is a ValidationError naming it; a session stored with other
        content is a ConflictError."""
        payload = _export_bytes(lines)
        answer = self._transport.request(
            "POST", "/v1/imports", payload=payload, content_type="application/x-ndjson"
        )
        totals: dict[str, Any] = answer.body
        return totals

    def is_available(self) -> bool:
        """True while the service can store writes (its ``/ready``). Never raises, never retries."""
        try:
            answer = self._transport.request("GET", "/ready", retries=0)
        except Exception:
            return False
        return bool(isinstance(answer.body, dict) and answer.body.get("ready") is True)

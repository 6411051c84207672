"""Swisper Memory's Python client: the Memory Manager API specification's ``MemoryManager`` over
the Swisper Memory HTTP service, with the standard library only.

    from swisper_memory import MemoryManager

    memory_manager = MemoryManager()  # SWISPER_MEMORY_URL, SWISPER_MEMORY_API_KEY
    memory_manager.add_message("session_123", {"role": "user", "content": "I want to buy a laptop"})
    context = memory_manager.get_context("session_123")

``memory_manager`` (imported from here) is a default client made from the environment on its first
use, for code written against a module-level instance.
"""

from __future__ import annotations

import threading
from typing import Any, cast

from .client import DEFAULT_URL, BufferStore, MemoryManager, SummaryStore
from .errors import (
    ApiError,
    AuthenticationError,
    ConflictError,
    ConnectionFailedError,
    ForbiddenError,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    RequestTimeoutError,
    ServiceUnavailableError,
    ShuttingDownError,
    StorageUnavailableError,
    SwisperMemoryError,
    UnsupportedMediaTypeError,
    ValidationError,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_URL",
    "ApiError",
    "AuthenticationError",
    "BufferStore",
    "ConflictError",
    "ConnectionFailedError",
    "ForbiddenError",
    "InternalServerError",
    "MemoryManager",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "RequestTimeoutError",
    "ServiceUnavailableError",
    "ShuttingDownError",
    "StorageUnavailableError",
    "SummaryStore",
    "SwisperMemoryError",
    "UnsupportedMediaTypeError",
    "ValidationError",
    "memory_manager",
]


class _DefaultMemoryManager:
    """Stands for a MemoryManager made from the environment when first used (so importing it reads
    no variable and opens no connection)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._instance: MemoryManager | None = None

    def _get(self) -> MemoryManager:
        with self._lock:
            if self._instance is None:
                self._instance = MemoryManager()
            return self._instance

    def _reset(self) -> None:
        """Closes the client, so that the next use makes a new one from the environment."""
        with self._lock:
            instance, self._instance = self._instance, None
        if instance is not None:
            instance.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def __repr__(self) -> str:
        return f"<default {self._instance!r}>" if self._instance else "<default MemoryManager, not made yet>"


#: The default client: ``MemoryManager()`` from the environment, made on first use.
memory_manager: MemoryManager = cast(MemoryManager, _DefaultMemoryManager())

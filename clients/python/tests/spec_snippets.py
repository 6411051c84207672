"""Snippets of the Memory Manager API specification, as it has them but for the imports.

"Orchestrator Integration" is verbatim below its import (``from contract_engine.memory import
memory_manager`` becomes ``from swisper_memory import memory_manager``; ``time``, which the snippet
uses, is imported too). "Session Store Coexistence" and "Debug Commands" follow, the latter in a
function; ``PostgresSessionStore`` is a stand-in for the legacy store that records what it gets.
"""
import time
from typing import Any, Dict, List

from swisper_memory import MemoryManager, memory_manager

# In orchestrator/core.py
def handle_user_message(session_id: str, message: str):
    # Add message to memory
    memory_manager.add_message(session_id, {
        "role": "user", 
        "content": message,
        "timestamp": int(time.time())
    })
    
    # Get context for processing
    context = memory_manager.get_context(session_id)
    
    # Process with existing session store as fallback
    # ... existing logic ...


class PostgresSessionStore:
    """Stand-in for the legacy store: records each message it is given."""

    def __init__(self) -> None:
        self.messages: List[Dict[str, Any]] = []

    def add_chat_message(self, session_id: str, message: Dict[str, Any]) -> None:
        self.messages.append({"session_id": session_id, **message})


# Wrapper pattern for transition period
class EnhancedSessionStore:
    def __init__(self):
        self.memory_manager = MemoryManager()
        self.legacy_store = PostgresSessionStore()
    
    def add_chat_message(self, session_id: str, message: Dict[str, Any]):
        # Add to memory manager
        self.memory_manager.add_message(session_id, message)
        
        # Fallback to legacy store
        self.legacy_store.add_chat_message(session_id, message)


def debug_commands():
    # Check memory system status
    stats = memory_manager.get_memory_stats("session_id")
    print(f"Redis available: {memory_manager.is_available()}")

    # Inspect buffer contents
    buffer_info = memory_manager.buffer_store.get_buffer_info("session_id")
    messages = memory_manager.buffer_store.get_messages("session_id")
    return stats, buffer_info, messages

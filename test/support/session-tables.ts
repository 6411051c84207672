/** Every table of the system of record that holds rows of a session (what an erase must empty). */
export const SESSION_TABLES = [
  "memory_messages",
  "memory_summaries",
  "memory_session_configs",
  "memory_context_snapshots",
  "memory_summary_leases",
  "memory_sessions",
] as const;

import type { SessionRef } from "../buffer/keys.js";
import type { SwisperContext } from "../types.js";
import type { Database, Queryable } from "./database.js";

/**
 * Asked under the session's row lock, before anything is deleted: false keeps the session (the
 * retention sweeper's "still idle?", which a write committed since the sweep read it answers no).
 */
export type EraseGuard = (tx: Queryable) => Promise<boolean>;

/** SwisperContext snapshots and whole-session erasure in the system of record. */
export class SessionRecords {
  readonly #db: Database;
  constructor(db: Database) {
    this.#db = db;
  }

  async saveContext(ref: SessionRef, json: string): Promise<void> {
    await this.#db.query(
      `INSERT INTO memory_context_snapshots (tenant, session_id, context) VALUES ($1, $2, $3::json)
       ON CONFLICT (tenant, session_id) DO UPDATE SET context = EXCLUDED.context, updated_at = now()`,
      [ref.tenant, ref.sessionId, json],
    );
  }

  async loadContext(ref: SessionRef): Promise<SwisperContext | null> {
    // As text, so that the snapshot parses exactly as it was written.
    const { rows } = await this.#db.query<{ context: string }>(
      "SELECT context::text AS context FROM memory_context_snapshots WHERE tenant = $1 AND session_id = $2",
      [ref.tenant, ref.sessionId],
    );
    return rows[0] ? (JSON.parse(rows[0].context) as SwisperContext) : null;
  }

  /**
   * Deletes everything the session has in every table, in one transaction. The session row is
   * locked first: a write, outbox replay or summary commit holding it finishes before the delete
   * reads the tables (so its rows go too), and one that comes after finds the session gone. The
   * delete alone would take its snapshot before waiting for the row, and leave behind what a
   * concurrent writer committed meanwhile. With a guard that answers false, deletes nothing and
   * returns false.
   */
  async erase(ref: SessionRef, guard?: EraseGuard): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      await tx.query("SELECT 1 FROM memory_sessions WHERE tenant = $1 AND session_id = $2 FOR UPDATE", [
        ref.tenant,
        ref.sessionId,
      ]);
      if (guard && !(await guard(tx))) return false;
      await tx.query(
        `WITH messages AS (DELETE FROM memory_messages WHERE tenant = $1 AND session_id = $2),
              summaries AS (DELETE FROM memory_summaries WHERE tenant = $1 AND session_id = $2),
              configs AS (DELETE FROM memory_session_configs WHERE tenant = $1 AND session_id = $2),
              snapshots AS (DELETE FROM memory_context_snapshots WHERE tenant = $1 AND session_id = $2),
              leases AS (DELETE FROM memory_summary_leases WHERE tenant = $1 AND session_id = $2)
         DELETE FROM memory_sessions WHERE tenant = $1 AND session_id = $2`,
        [ref.tenant, ref.sessionId],
      );
      return true;
    });
  }
}

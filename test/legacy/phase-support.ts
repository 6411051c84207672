import { readFileSync } from "node:fs";
import { PostgresLegacyStore } from "../../src/legacy/legacy-store.js";
import type { LegacyOptions, MemoryManagerOptions } from "../../src/manager/create-memory-manager.js";
import { openTestService, type TestService } from "../service/harness.js";
import type { TestDatabase } from "../support/servers.js";

/** The legacy table as deployed (a copy of the legacy system's definition). */
export const TABLE_SQL = readFileSync(new URL("./swisper_sessions.sql", import.meta.url), "utf8");

export const sessionUrl = (sessionId: string, path = "") => `/v1/sessions/${sessionId}${path}`;

/** Polls `check` every 25 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * A service in migration phase `legacy.phase` whose legacy table is created in the test's own
 * database (LEGACY_DATABASE_URL may equal DATABASE_URL).
 */
export async function openPhaseService(
  database: TestDatabase,
  legacy: Omit<LegacyOptions, "store">,
  manager: Partial<MemoryManagerOptions> = {},
): Promise<{ service: TestService; store: PostgresLegacyStore }> {
  await database.db.exec(TABLE_SQL);
  const store = new PostgresLegacyStore({ database: database.db });
  const service = await openTestService(
    database,
    undefined,
    {},
    { ...manager, legacy: { ...legacy, store } },
  );
  return { service, store };
}

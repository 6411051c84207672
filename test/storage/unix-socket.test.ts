import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { readMemoryEnvironment } from "../../src/environment.js";
import { DatabaseUnavailableError } from "../../src/errors.js";
import { createMemoryManager } from "../../src/manager/create-memory-manager.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { DatabaseConnectError } from "../../src/storage/database.js";
import { recordingLogger } from "../support/fixtures.js";
import { PostgresClusterProcess } from "../support/processes.js";
import { uniqueName } from "../support/servers.js";

// PostgreSQL on the same machine is often reached through its Unix socket, named the way libpq
// names it: postgres:///memory?host=/var/run/postgresql. Before, DATABASE_URL refused that form
// ("names no host"), and a socket with no server behind it (ENOENT) was neither named with
// DATABASE_URL at start-up nor counted as an outage by the breaker: a write failed with a bare
// "connect ENOENT" instead of DatabaseUnavailableError.

describe("DATABASE_URL in libpq's Unix-socket form", () => {
  it("is accepted with its host in the query, and refused with no host at all", () => {
    const socket = "postgres:///memory?host=/var/run/postgresql&user=memory";
    expect(readMemoryEnvironment({ DATABASE_URL: socket, LEGACY_DATABASE_URL: socket })).toEqual({
      DATABASE_URL: socket,
      LEGACY_DATABASE_URL: socket,
    });
    expect(() => readMemoryEnvironment({ DATABASE_URL: "postgres:///memory" })).toThrow(
      /^DATABASE_URL: names no host, like postgres:\/\/user@127\.0\.0\.1:5432\/memory, or postgres:\/\/\/<database>\?host=\/<socket folder>&user=<user>/,
    );
    // node's URL parser refuses a user without a host; the message shows the form it takes.
    expect(() =>
      readMemoryEnvironment({ LEGACY_DATABASE_URL: "postgres://memory@/memory?host=/tmp" }),
    ).toThrow(/^LEGACY_DATABASE_URL: must be a URL like .*, or postgres:\/\/\/<database>\?host=/);
  });
});

describe.skipIf(!inject("postgresAvailable"))("PostgreSQL through its Unix socket", () => {
  let postgres: PostgresClusterProcess;
  const opened: MemoryManager[] = [];
  beforeAll(async () => {
    postgres = await PostgresClusterProcess.start();
  });
  afterAll(async () => {
    await Promise.all(opened.map((manager) => manager.close().catch(() => {})));
    await postgres.stop();
  });

  it("stores and answers every message, and an outage is one: typed, logged with the socket's folder", async () => {
    const logger = recordingLogger();
    const memory = await createMemoryManager({
      env: { DATABASE_URL: postgres.socketUrl },
      redis: false,
      logger,
      resilience: { failureThreshold: 1, recoveryTimeoutMs: 60_000 },
      summarization: { idleFinalizeAfterMs: 0 },
    });
    opened.push(memory);
    const session = uniqueName("socket");
    for (const content of ["one", "two", "three"])
      await memory.addMessage(session, { role: "user", content });
    const context = await memory.getContext(session);
    expect(context.buffer_messages.map((message) => message.content)).toEqual(["one", "two", "three"]);

    await postgres.stopServer();
    const error = await memory
      .addMessage(session, { role: "user", content: "four" })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseUnavailableError);
    expect(JSON.stringify(logger.lines)).toContain(`${postgres.dir}:${postgres.port}`);
    await postgres.restart();
  });

  it("names DATABASE_URL, the socket's folder and ENOENT when no server is behind it", async () => {
    const empty = await mkdtemp(join(tmpdir(), "swm-no-pg-"));
    try {
      const error = await createMemoryManager({
        env: { DATABASE_URL: `postgres:///postgres?host=${empty}&user=postgres` },
        redis: false,
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DatabaseConnectError);
      expect((error as Error).message).toMatch(
        new RegExp(`^PostgreSQL at ${empty}:5432 \\(DATABASE_URL\\) is unreachable: ENOENT`),
      );
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { inject } from "vitest";
import type { Environment } from "../../src/cli/command.js";
import { main } from "../../src/cli/main.js";
import {
  createTestDatabase,
  createTestRedis,
  type TestDatabase,
  type TestRedis,
} from "../support/servers.js";
import { TEST_REDIS_URL } from "../support/urls.js";

/** Collects what a command writes. */
export class Capture extends Writable {
  text = "";
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString("utf8");
    done();
  }
}

/** Runs one `swisper-memory` command line in-process with `env`. */
export async function cli(
  env: Environment,
  ...argv: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await main(argv, { env, stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** The storage a CLI test's commands open, named by an environment; `close()` removes it. */
export interface CliStorage {
  env: Environment;
  /** Whether a Redis hot tier is configured. */
  redis: boolean;
  close(): Promise<void>;
}

/**
 * The test's own PostgreSQL database (or, without a server, an embedded one in a temporary
 * folder) and, where Redis answers, its own key prefix.
 */
export async function cliStorage(folderPrefix: string): Promise<CliStorage> {
  const env: Environment = { MEMORY_IDLE_FINALIZE_SECONDS: "0" };
  let database: TestDatabase | undefined;
  let testRedis: TestRedis | undefined;
  let dataDir: string | undefined;
  if (inject("postgresAvailable")) {
    database = await createTestDatabase();
    env.DATABASE_URL = database.url!;
  } else {
    dataDir = await mkdtemp(join(tmpdir(), folderPrefix));
    env.MEMORY_DATA_DIR = dataDir;
  }
  if (inject("redisAvailable")) {
    testRedis = await createTestRedis();
    env.REDIS_URL = TEST_REDIS_URL;
    env.MEMORY_KEY_PREFIX = testRedis.keyPrefix;
  }
  return {
    env,
    redis: testRedis !== undefined,
    async close() {
      await testRedis?.cleanup();
      await database?.drop();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

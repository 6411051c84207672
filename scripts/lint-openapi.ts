// `npm run lint:openapi`: lints the OpenAPI document the service serves, as it serves it (built
// in-process, nothing listens), with Redocly CLI and the rules in redocly.yaml. Both variants:
// with API keys and without, which differ in security schemes and 401 answers. Offline: Redocly's
// telemetry and update check are off, and the documents are files in a temporary folder.
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createMemoryManager } from "../src/manager/create-memory-manager.js";
import { ApiKeyring, createMemoryService } from "../src/service/index.js";
import { PgliteDatabase } from "../src/storage/database.js";

const silent = { info() {}, warn() {}, error() {} };
const VARIANTS = {
  "with-api-keys.json": ApiKeyring.fromPairs([{ tenant: "acme", key: "lint-openapi-key-0123456789" }]),
  "without-api-keys.json": ApiKeyring.empty(),
};

async function writeDocuments(folder: string): Promise<string[]> {
  // An in-memory database, no Redis: the document does not depend on the storage.
  const memory = await createMemoryManager({
    database: new PgliteDatabase(),
    redis: false,
    env: {},
    logger: silent,
  });
  try {
    const files: string[] = [];
    for (const [name, apiKeys] of Object.entries(VARIANTS)) {
      const app = await createMemoryService({ memory, apiKeys });
      const response = await app.inject({ method: "GET", url: "/openapi.json" });
      await app.close();
      if (response.statusCode !== 200) throw new Error(`/openapi.json answered ${response.statusCode}`);
      const file = join(folder, name);
      await writeFile(file, `${JSON.stringify(JSON.parse(response.body), null, 2)}\n`);
      files.push(file);
    }
    return files;
  } finally {
    await memory.close();
  }
}

const folder = await mkdtemp(join(tmpdir(), "swisper-openapi-"));
try {
  const files = await writeDocuments(folder);
  const lint = spawnSync("redocly", ["lint", "--config", "redocly.yaml", ...files], {
    stdio: "inherit",
    env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" },
  });
  if (lint.error) throw lint.error;
  process.exitCode = lint.status ?? 1;
} finally {
  await rm(folder, { recursive: true, force: true });
}

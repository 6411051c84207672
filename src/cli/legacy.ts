import { readProductEnvironment } from "../environment.js";
import {
  ARCHIVED_SOURCES,
  type ArchivedSource,
  archivedSessions,
  countArchivedSessions,
  defaultKeyPrefix,
} from "../legacy/archived.js";
import {
  type ImportEngineOptions,
  importLegacySessions,
  importSessions,
  type LegacyImportTotals,
  type SkippedItem,
} from "../legacy/import.js";
import { PostgresLegacyStore } from "../legacy/legacy-store.js";
import { isTimeZone } from "../legacy/local-time.js";
import { readQueueDepth } from "../legacy/mirror.js";
import { type LegacyVerifyResult, verifyLegacySessions } from "../legacy/verify.js";
import { connectRedis, type RedisConnection } from "../storage/redis-client.js";
import {
  type CliContext,
  type Command,
  type Environment,
  integerOption,
  parseCommandLine,
  UsageError,
  write,
} from "./command.js";
import { type OpenedMemory, openMemory } from "./open-memory.js";
import { Progress } from "./progress.js";

const HELP = `Usage: swisper-memory legacy <import|verify|status> [options]

Moves sessions from the legacy session store (the swisper_sessions table in LEGACY_DATABASE_URL)
into this memory (DATABASE_URL or MEMORY_DATA_DIR, REDIS_URL), through the library's write path.
With --from langchain-redis|motorhead, import reads an archived memory server's Redis instead.

  import   Streams every row (or --session ID) into the transcript. Each history element gets an
           id derived from the session id, its index and its content, so a re-run or a run
           resumed after a crash stores nothing twice. Elements that are not valid messages are
           reported and skipped. Prints totals; exit 0.
  verify   Compares every session (or --session ID, or --sample N at random): message count,
           order, role and content of every message, and the contract context. Exit 0 when all
           agree, 1 with each diverging session's report.
  status   Prints the migration phase (MEMORY_MIGRATION_PHASE), how many writes wait in the
           retry queue for the legacy store (the 10 sessions with the most), and whether the
           legacy store answers. Exit 0.

Options:
  --session ID       only this session
  --tenant NAME      the memory's tenant (default "default")
  --time-zone ZONE   IANA zone of the legacy local times (default UTC)
  --json             print the result as JSON
  import only:
  --dry-run          read and check everything, write nothing
  --batch-size N     messages per addMessages call, 1-1000 (default 1000)
  --max-sessions N   stop after N sessions (a later run resumes)
  --concurrency N    sessions imported at once, 1-64 (default 16)
  --from SOURCE      swisper-sessions (default), or an archived memory server's Redis:
                     langchain-redis (LangChain's RedisChatMessageHistory) or motorhead
  --redis-url URL    with --from langchain-redis|motorhead: that server's redis:// URL
  --key-prefix P     the keys of its sessions start with P (default "message_store:" for
                     langchain-redis --layout python, "" for --layout js and motorhead)
  --layout L         langchain-redis: python (default) or js, the library that wrote it
  verify only:
  --sample N         check N sessions chosen at random`;

const OPTIONS = {
  session: { type: "string" },
  tenant: { type: "string" },
  "time-zone": { type: "string" },
  json: { type: "boolean" },
  "dry-run": { type: "boolean" },
  "batch-size": { type: "string" },
  "max-sessions": { type: "string" },
  concurrency: { type: "string" },
  sample: { type: "string" },
  from: { type: "string" },
  "redis-url": { type: "string" },
  "key-prefix": { type: "string" },
  layout: { type: "string" },
} as const;

type Values = ReturnType<typeof parseCommandLine<typeof OPTIONS>>["values"];

export const legacyCommand: Command = {
  name: "legacy",
  summary: "Import sessions from the legacy swisper_sessions table, verify them, show the migration status",
  help: HELP,
  async run(args, context) {
    const { values, positionals } = parseCommandLine(args, OPTIONS, { min: 1, max: 1 });
    const [action] = positionals;
    if (action === "status") {
      const others = Object.keys(values).filter((name) => name !== "json");
      if (others.length > 0) throw new UsageError(`status takes only --json (got --${others[0]})`);
      return runStatus(values, context);
    }
    if (action !== "import" && action !== "verify") throw new UsageError(`unknown action '${action}'`);
    const timeZone = values["time-zone"] ?? "UTC";
    if (!isTimeZone(timeZone)) throw new UsageError(`--time-zone '${timeZone}' is not an IANA time zone`);
    if (action === "import" && values.sample !== undefined) throw new UsageError("--sample is for verify");
    if (
      action === "verify" &&
      (values["dry-run"] || values["max-sessions"] !== undefined || values.concurrency)
    ) {
      throw new UsageError("--dry-run, --max-sessions and --concurrency are for import");
    }
    const archived = archivedOptions(action, values);
    if (archived) return await runArchivedImport(archived, values, context);
    const legacy = openLegacy(context.env, timeZone);
    let opened: OpenedMemory | null = null;
    try {
      // Phase off: an import mirrored back into the store it reads would double every session.
      opened = await openMemory(context.env, {
        ...(values.tenant !== undefined ? { tenant: values.tenant } : {}),
        legacy: { phase: "off" },
      });
      const legacyRun: LegacyRun = { values, timeZone, legacy, opened, context };
      return action === "import" ? await runImport(legacyRun) : await runVerify(legacyRun);
    } finally {
      await opened?.close();
      await legacy.close();
    }
  },
};

/** The archived server to import from, checked; null for the legacy table. */
interface ArchivedOptions {
  source: ArchivedSource;
  redisUrl: string;
  keyPrefix: string;
  idPrefix: string;
}

function archivedOptions(action: string, values: Values): ArchivedOptions | null {
  const from = values.from ?? "swisper-sessions";
  const redisOnly = [values["redis-url"], values["key-prefix"], values.layout].some(
    (value) => value !== undefined,
  );
  if (from === "swisper-sessions") {
    if (redisOnly)
      throw new UsageError("--redis-url, --key-prefix and --layout are for --from langchain-redis|motorhead");
    return null;
  }
  if (!(ARCHIVED_SOURCES as readonly string[]).includes(from)) {
    throw new UsageError(`--from '${from}' is not one of swisper-sessions, ${ARCHIVED_SOURCES.join(", ")}`);
  }
  const source = from as ArchivedSource;
  if (action !== "import")
    throw new UsageError(`--from ${source} is for import (verify reads swisper_sessions)`);
  const layout = values.layout ?? "python";
  if (layout !== "python" && layout !== "js")
    throw new UsageError(`--layout '${layout}' is not python or js`);
  const keyPrefix = values["key-prefix"] ?? defaultKeyPrefix(source, layout);
  if (values.layout !== undefined && source !== "langchain-redis")
    throw new UsageError("--layout is for --from langchain-redis");
  return {
    source,
    redisUrl: redisUrlOption(values["redis-url"]),
    keyPrefix,
    // Only LangChain Python puts a prefix before the session id; the others key by the id itself.
    idPrefix: source === "langchain-redis" && layout === "python" ? keyPrefix : "",
  };
}

function redisUrlOption(value: string | undefined): string {
  if (value === undefined)
    throw new UsageError("--redis-url is required with --from langchain-redis|motorhead");
  let protocol: string;
  try {
    protocol = new URL(value).protocol;
  } catch {
    throw new UsageError(`--redis-url '${value}' is not a URL (redis://host:port[/db])`);
  }
  if (protocol !== "redis:" && protocol !== "rediss:") {
    throw new UsageError(`--redis-url '${value}' is not a redis:// or rediss:// URL`);
  }
  return value;
}

/** `legacy import --from langchain-redis|motorhead`: that server's Redis through the same engine. */
async function runArchivedImport(
  archived: ArchivedOptions,
  values: Values,
  context: CliContext,
): Promise<number> {
  const { stderr } = context;
  const engine = engineOptions(values, stderr);
  let source: RedisConnection | null = null;
  let opened: OpenedMemory | null = null;
  try {
    // A bulk read: commands may take longer than the hot tier's 1 s bound.
    source = await connectRedis({ url: archived.redisUrl, source: "--redis-url", commandTimeoutMs: 30_000 });
    // Phase off, as for the legacy table: an import is not a write of Swisper Core's to mirror.
    opened = await openMemory(context.env, {
      ...(values.tenant !== undefined ? { tenant: values.tenant } : {}),
      legacy: { phase: "off" },
    });
    const available =
      values.session !== undefined ? 1 : await countArchivedSessions(source, archived.keyPrefix);
    const total = Math.min(available, engine.maxSessions ?? available);
    const progress = importProgress(stderr, `import ${archived.source}`, total);
    const sessions = archivedSessions({
      redis: source,
      source: archived.source,
      keyPrefix: archived.keyPrefix,
      idPrefix: archived.idPrefix,
      ...(values.session !== undefined ? { sessionId: values.session } : {}),
    });
    const totals = await importSessions(sessions, {
      ...engine,
      memory: opened.memory,
      ...progress,
    });
    progress.finish();
    return reportImport(totals, values, context, `under key prefix '${archived.keyPrefix}'`);
  } finally {
    await opened?.close();
    await source?.close();
  }
}

/** `legacy status`: the phase, the retry queue and whether the legacy store answers. */
async function runStatus(values: Values, { env, stdout }: CliContext): Promise<number> {
  const phase = readProductEnvironment(env).MEMORY_MIGRATION_PHASE ?? "off";
  const opened = await openMemory(env, { legacy: { phase: "off" } });
  let queue: Awaited<ReturnType<typeof readQueueDepth>>;
  try {
    queue = await readQueueDepth(opened.db, 10);
  } finally {
    await opened.close();
  }
  let legacy = "not configured (LEGACY_DATABASE_URL is not set)";
  let reachable: boolean | null = null;
  if (env.LEGACY_DATABASE_URL?.trim()) {
    const store = openLegacy(env, "UTC");
    try {
      const sessions = await store.countSessions();
      reachable = true;
      legacy = `reachable (${sessions} sessions in swisper_sessions)`;
    } catch (error) {
      reachable = false;
      legacy = `NOT reachable: ${error instanceof Error ? error.message : String(error)}`;
    } finally {
      await store.close();
    }
  }
  if (values.json) {
    write(stdout, JSON.stringify({ phase, retry_queue: queue, legacy_reachable: reachable }));
    return 0;
  }
  write(stdout, `phase: ${phase}`);
  write(stdout, `retry queue: ${queue.total} writes waiting for the legacy store`);
  for (const session of queue.sessions) write(stdout, `  ${session.sessionId}: ${session.entries}`);
  write(stdout, `legacy store: ${legacy}`);
  return 0;
}

function openLegacy(env: Environment, timeZone: string): PostgresLegacyStore {
  const connectionString = env.LEGACY_DATABASE_URL?.trim();
  if (!connectionString) {
    throw new UsageError(
      "LEGACY_DATABASE_URL is not set: the PostgreSQL database with the swisper_sessions table",
    );
  }
  return new PostgresLegacyStore({ connectionString, timeZone });
}

/** What both actions work with. */
interface LegacyRun {
  values: Values;
  timeZone: string;
  legacy: PostgresLegacyStore;
  opened: OpenedMemory;
  context: CliContext;
}

/** A positive count option, or undefined when absent. */
function countOption(value: string | undefined, name: string): number | undefined {
  return value === undefined ? undefined : integerOption(value, name, 0, 1, Number.MAX_SAFE_INTEGER);
}

/** Skipped items printed one by one; the rest are only counted. */
const SKIPPED_SHOWN = 20;

/**
 * The progress bars of an import: the sessions loaded, then the sessions summarized (a second
 * bar, started when the engine says how many).
 */
function importProgress(
  stderr: NodeJS.WritableStream,
  label: string,
  total: number,
): Pick<ImportEngineOptions, "onSession" | "onSummarizing" | "onSummarized"> & { finish: () => void } {
  const loading = new Progress({ stream: stderr, label, total, rateUnit: "sessions" });
  let summarizing: Progress | null = null;
  return {
    onSession: () => loading.tick(),
    onSummarizing: (sessions) => {
      loading.finish();
      if (sessions > 0) {
        summarizing = new Progress({
          stream: stderr,
          label: `${label}: summaries`,
          total: sessions,
          rateUnit: "sessions",
        });
      }
    },
    onSummarized: () => summarizing?.tick(),
    finish: () => summarizing?.finish(),
  };
}

/** The engine's options from the command line, whatever the source. */
function engineOptions(values: Values, stderr: NodeJS.WritableStream): Omit<ImportEngineOptions, "memory"> {
  const maxSessions = countOption(values["max-sessions"], "max-sessions");
  let shown = 0;
  return {
    dryRun: values["dry-run"] === true,
    batchSize: integerOption(values["batch-size"], "batch-size", 1000, 1, 1000),
    concurrency: integerOption(values.concurrency, "concurrency", 16, 1, 64),
    ...(maxSessions !== undefined ? { maxSessions } : {}),
    onSkipped: (item: SkippedItem) => {
      if (shown++ < SKIPPED_SHOWN) write(stderr, `skipped ${describeSkipped(item)}`);
    },
  };
}

async function runImport({ values, timeZone, legacy, opened, context }: LegacyRun): Promise<number> {
  const { stderr } = context;
  const engine = engineOptions(values, stderr);
  const available = values.session !== undefined ? 1 : await legacy.countSessions();
  const total = Math.min(available, engine.maxSessions ?? available);
  const progress = importProgress(stderr, "legacy import", total);
  const totals = await importLegacySessions({
    ...engine,
    legacy,
    memory: opened.memory,
    timeZone,
    ...(values.session !== undefined ? { sessionId: values.session } : {}),
    ...progress,
  });
  progress.finish();
  return reportImport(totals, values, context, "in swisper_sessions");
}

/** Prints the totals; exit 1 when the one `--session` asked for is not in the source. */
function reportImport(
  totals: LegacyImportTotals,
  values: Values,
  context: CliContext,
  where: string,
): number {
  if (values.session !== undefined && totals.sessions === 0) {
    write(context.stderr, `no session '${values.session}' ${where}`);
    return 1;
  }
  if (values.json) write(context.stdout, JSON.stringify(totals));
  else printImportTotals(totals, values["dry-run"] === true, context.stdout);
  return 0;
}

function describeSkipped(item: SkippedItem): string {
  const where = item.index === null ? item.sessionId : `${item.sessionId}[${item.index}]`;
  return `${where}: ${item.reason}`;
}

function printImportTotals(totals: LegacyImportTotals, dryRun: boolean, stdout: NodeJS.WritableStream): void {
  const skipped = Object.entries(totals.skippedByReason);
  const skippedCount = skipped.reduce((sum, [, count]) => sum + count, 0);
  const reasons = skipped.map(([reason, count]) => `${reason}: ${count}`).join(", ");
  const lines: [string, string | number][] = [
    ["sessions", totals.sessions],
    ["messages read", totals.messagesRead],
    ["messages stored", totals.messagesStored],
    ["duplicates skipped", totals.duplicatesSkipped],
    ["contexts saved", totals.contextsSaved],
    ["invalid skipped", skippedCount === 0 ? 0 : `${skippedCount} (${reasons})`],
    ["seconds", totals.seconds.toFixed(1)],
    ["sessions summarized", totals.sessionsSummarized],
    ["summary seconds", totals.summarySeconds.toFixed(1)],
  ];
  if (totals.summariesNotCaughtUp > 0) {
    // The summarizer failed for these: their next write asks again; a re-run of the import too.
    lines.push(["summaries behind", `${totals.summariesNotCaughtUp} (the summarizer is failing)`]);
  }
  if (dryRun) lines.unshift(["dry run", "nothing written"]);
  for (const [name, value] of lines) write(stdout, `${name.padEnd(20)} ${value}`);
}

async function runVerify({ values, timeZone, legacy, opened, context }: LegacyRun): Promise<number> {
  const { stdout, stderr } = context;
  const sample = countOption(values.sample, "sample");
  const total = values.session !== undefined ? 1 : (sample ?? (await legacy.countSessions()));
  const progress = new Progress({ stream: stderr, label: "legacy verify", total, rateUnit: "sessions" });
  const result = await verifyLegacySessions({
    legacy,
    memory: opened.memory,
    database: opened.db,
    timeZone,
    ...(values.session !== undefined ? { sessionId: values.session } : {}),
    ...(sample !== undefined ? { sample } : {}),
    onSession: () => progress.tick(),
  });
  progress.finish();
  if (values.session !== undefined && result.sessions === 0) {
    write(stderr, `no session '${values.session}' in swisper_sessions`);
    return 1;
  }
  if (values.json) write(stdout, JSON.stringify(result));
  else printVerifyReport(result, stdout);
  return result.diverging.length === 0 ? 0 : 1;
}

function printVerifyReport(result: LegacyVerifyResult, stdout: NodeJS.WritableStream): void {
  for (const verdict of result.diverging) {
    write(
      stdout,
      `session ${verdict.sessionId}: legacy ${verdict.legacyMessages}, memory ${verdict.storedMessages}`,
    );
    for (const divergence of verdict.divergences) write(stdout, `  ${divergence.kind}: ${divergence.detail}`);
  }
  const agreeing = result.sessions - result.diverging.length;
  write(stdout, `${result.sessions} sessions checked: ${agreeing} agree, ${result.diverging.length} diverge`);
}

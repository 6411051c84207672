import type { BufferInfo } from "../buffer/buffer-store.js";
import type { MemoryContext, MemoryStats } from "../manager/memory-manager.js";
import type { SessionConfig } from "../manager/session-config.js";
import type { CircuitBreakerSnapshot, HealthReport } from "../resilience/index.js";
import { describeRedisMemory } from "../storage/redis-settings.js";
import type { RedisStats } from "../storage/redis-stats.js";
import type { StoredMessage, SummaryRecord } from "../types.js";
import {
  type Command,
  type Environment,
  integerOption,
  parseCommandLine,
  TENANT_WITH_URL,
  UsageError,
  write,
} from "./command.js";
import { openMemory } from "./open-memory.js";
import { type ServiceClient, ServiceResponseError, serviceClientFor } from "./service-client.js";

const HELP = `Usage: swisper-memory inspect <session> [options]

Prints what the specification's Debug Commands print for one session: whether memory is available, the
circuit breakers' states, the buffer's info and messages, the current summary and the summary
history, and the session's config. Reads only. Opens the storage the environment configures
(DATABASE_URL or MEMORY_DATA_DIR, REDIS_URL), or, with --url or MEMORY_URL, asks that running
service over HTTP and shows its live breakers (MEMORY_API_KEY is sent as the key). When that
service cannot read the session now (503, an outage), it prints the service's availability and
breakers, and exits 1.

Options:
  --url <url>        a running service to ask, e.g. http://127.0.0.1:8080 (default MEMORY_URL)
  --tenant <name>    tenant of the session (default "default"; with --url the API key decides)
  --messages <n>     newest buffer messages to print (default 20; 0 prints none)
  --history <n>      summary versions to print, newest first (default 10)
  --json             print one JSON object instead of text
  -h, --help         this help`;

/** Whether memory is available, where it lives, and the breakers that decide it. */
interface Availability {
  session_id: string;
  tenant: string;
  available: boolean;
  database: string;
  redis: string;
  /** Whose breakers these are: this command's own, or the running service's. */
  breakers_of: "this command" | "the service";
  circuit_breakers: CircuitBreakerSnapshot[];
}

/** What `inspect` prints, from the storage (locally) or from a running service (`--url`). */
interface InspectReport extends Availability {
  /** Redis's memory limit and eviction policy (INFO); null without Redis or while it does not answer. */
  redis_memory: { maxmemory: number; maxmemory_policy: string } | null;
  buffer_info: BufferInfo;
  buffer_messages: StoredMessage[];
  current_summary: string | null;
  summary_history: SummaryRecord[];
  session_config: SessionConfig;
}

/**
 * A running service that answers its health but cannot read the session now (503: an outage):
 * its availability and breakers, which matter most then, and why the rest is missing.
 */
interface UnreadableSession extends Availability {
  error: string;
}

interface Limits {
  messages: number;
  history: number;
}

export const inspectCommand: Command = {
  name: "inspect",
  summary: "Print a session's availability, breakers, buffer, summaries and config",
  help: HELP,
  async run(args, { env, stdout, stderr }) {
    const { values, positionals } = parseCommandLine(
      args,
      {
        tenant: { type: "string" },
        messages: { type: "string" },
        history: { type: "string" },
        json: { type: "boolean" },
        url: { type: "string" },
      },
      { min: 1, max: 1 },
    );
    // biome-ignore lint/style/noNonNullAssertion: parseCommandLine required one positional
    const sessionId = positionals[0]!;
    const limits = {
      messages: integerOption(values.messages, "messages", 20, 0, 10_000),
      history: integerOption(values.history, "history", 10, 1, 1000),
    };
    const service = serviceClientFor(values.url, env);
    if (service && values.tenant !== undefined) throw new UsageError(TENANT_WITH_URL);
    const report = service
      ? await remoteReport(service, sessionId, limits)
      : await localReport(env, values.tenant, sessionId, limits);
    // As `clear` and the HTTP API (404): a session without memory is an error, exit 1.
    if (report === null) {
      write(
        stderr,
        `session '${sessionId}' ${service ? `at ${service.url}` : `(tenant '${values.tenant ?? "default"}')`} has no memory`,
      );
      return 1;
    }
    if (values.json) write(stdout, JSON.stringify(report, null, 2));
    else if ("error" in report) printAvailability(stdout, report);
    else printReport(stdout, report, limits);
    if (!("error" in report)) return 0;
    write(stderr, `swisper-memory inspect: ${report.error}`);
    return 1;
  },
};

async function localReport(
  env: Environment,
  tenant: string | undefined,
  sessionId: string,
  limits: Limits,
): Promise<InspectReport | null> {
  const opened = await openMemory(env, tenant !== undefined ? { tenant } : {});
  try {
    const { memory, redis } = opened;
    const [bufferInfo, messages, currentSummary, history, config, redisStats] = await Promise.all([
      memory.bufferStore.getBufferInfo(sessionId),
      limits.messages > 0 ? memory.bufferStore.getMessages(sessionId, limits.messages) : Promise.resolve([]),
      memory.summaryStore.getCurrentSummary(sessionId),
      memory.summaryStore.getSummaryHistory(sessionId, limits.history),
      memory.getSessionConfig(sessionId),
      memory.redisStats(),
    ]);
    if (bufferInfo.last_seq === 0 && history.length === 0) return null;
    return {
      session_id: sessionId,
      tenant: memory.tenant,
      available: memory.isAvailable(),
      database: opened.databaseLabel,
      redis: redis === null ? "not configured" : redis.isReady ? "connected" : "unreachable",
      breakers_of: "this command",
      circuit_breakers: memory.breakerSnapshots(),
      redis_memory: redisMemory(redis === null ? null : redisStats),
      buffer_info: bufferInfo,
      buffer_messages: messages,
      current_summary: currentSummary,
      summary_history: history,
      session_config: config,
    };
  } finally {
    await opened.close();
  }
}

/** The same report from a running service's HTTP API: its own breakers, as they are now. */
async function remoteReport(
  service: ServiceClient,
  sessionId: string,
  limits: Limits,
): Promise<InspectReport | UnreadableSession | null> {
  const session = `/v1/sessions/${encodeURIComponent(sessionId)}`;
  const [health, reads] = await Promise.all([
    service.get<HealthReport>("/health", [503]),
    Promise.all([
      service.get<MemoryContext>(`${session}/context`),
      service.get<{ summaries: SummaryRecord[] }>(`${session}/summaries?limit=${limits.history}`),
      service.get<MemoryStats>(`${session}/stats`),
    ]).catch((error: unknown) => {
      // An outage is when the service's availability and breakers matter most: keep them.
      if (error instanceof ServiceResponseError && error.status === 503) return error;
      throw error;
    }),
  ]);
  if (!health) return null;
  const database = health.components.postgres;
  const redis = health.components.redis;
  const availability: Availability = {
    session_id: sessionId,
    tenant: service.hasApiKey ? "(the API key's)" : "default",
    available: health.available,
    database: `${database?.kind ?? "postgres"} at ${service.url}: ${database?.status ?? "unknown"}`,
    redis: redis === undefined || redis.status === "disabled" ? "not configured" : redis.status,
    breakers_of: "the service",
    circuit_breakers: Object.values(health.breakers),
  };
  if (reads instanceof ServiceResponseError) return { ...availability, error: reads.message };
  const [context, summaries, stats] = reads;
  if (!context || !summaries || !stats) return null;
  return {
    ...availability,
    redis_memory: redisMemory(redis === undefined || redis.status === "disabled" ? null : stats.redis),
    buffer_info: context.buffer_info,
    buffer_messages: limits.messages > 0 ? context.buffer_messages.slice(-limits.messages) : [],
    current_summary: context.current_summary,
    summary_history: summaries.summaries,
    session_config: stats.session_config,
  };
}

function printAvailability(stdout: NodeJS.WritableStream, report: Availability): void {
  write(stdout, `Session '${report.session_id}' (tenant '${report.tenant}')`);
  write(stdout);
  write(stdout, `Memory available:  ${report.available ? "yes" : "NO"}`);
  write(stdout, `System of record:  ${report.database}`);
  write(stdout, `Redis:             ${report.redis}`);
  printBreakers(stdout, report);
}

/** The limit and policy from Redis's figures, when it answered. */
function redisMemory(stats: RedisStats | null): InspectReport["redis_memory"] {
  if (!stats?.available || stats.maxmemory === null || stats.maxmemory_policy === null) return null;
  return { maxmemory: stats.maxmemory, maxmemory_policy: stats.maxmemory_policy };
}

function printReport(stdout: NodeJS.WritableStream, report: InspectReport, limits: Limits): void {
  printAvailability(stdout, report);
  if (report.redis_memory) {
    const { maxmemory, maxmemory_policy: policy } = report.redis_memory;
    write(stdout, `Redis memory:      ${describeRedisMemory(maxmemory, policy)}`);
  }
  write(stdout);
  write(stdout, "Buffer info:");
  for (const [key, value] of Object.entries(report.buffer_info))
    write(stdout, `  ${key.padEnd(24)}${String(value)}`);
  write(stdout);
  const messages = report.buffer_messages;
  write(
    stdout,
    limits.messages === 0
      ? "Buffer messages: (not printed; --messages 0)"
      : messages.length === 0
        ? "Buffer messages: none"
        : `Buffer messages (newest ${messages.length} of ${report.buffer_info.message_count}, oldest first):`,
  );
  for (const message of messages) write(stdout, `  ${formatMessage(message)}`);
  write(stdout);
  const current = report.summary_history[0];
  if (report.current_summary === null || !current) {
    write(stdout, "Current summary: none yet");
  } else {
    write(
      stdout,
      `Current summary (version ${current.version}, covers seq 1..${current.last_seq}, ${current.tokens} tokens):`,
    );
    for (const line of report.current_summary.split("\n")) write(stdout, `  ${line}`);
  }
  write(stdout);
  const history = report.summary_history;
  write(
    stdout,
    history.length === 0 ? "Summary history: none" : `Summary history (newest ${history.length}):`,
  );
  for (const record of history) write(stdout, `  ${formatSummary(record)}`);
  write(stdout);
  write(stdout, "Session config:");
  for (const [key, value] of Object.entries(report.session_config))
    write(stdout, `  ${key.padEnd(24)}${value}`);
}

function printBreakers(stdout: NodeJS.WritableStream, report: Availability): void {
  write(
    stdout,
    `Circuit breakers:  ${report.breakers_of === "the service" ? "the service's, live" : "this command's own (--url shows a running service's)"}`,
  );
  for (const breaker of report.circuit_breakers) {
    const detail =
      breaker.state === "open"
        ? `, retry in ${breaker.retry_after_ms} ms, last error: ${breaker.last_error}`
        : "";
    write(
      stdout,
      `  ${breaker.name.padEnd(11)} ${breaker.state.toUpperCase()} (${breaker.failures} failures${detail})`,
    );
  }
}

function formatMessage(message: StoredMessage): string {
  const content =
    typeof message.content === "string"
      ? message.content
      : message.content === null
        ? `(tool calls: ${message.tool_calls?.map((call) => call.function.name).join(", ") ?? ""})`
        : JSON.stringify(message.content);
  const oneLine = content.replace(/\s+/g, " ");
  const text = oneLine.length > 160 ? `${oneLine.slice(0, 157)}...` : oneLine;
  const estimated = message.tokens_estimated ? ", estimated" : "";
  return `#${message.seq} ${message.role} (${message.tokens} tokens${estimated}): ${text}`;
}

function formatSummary(record: SummaryRecord): string {
  const merged = record.metadata.merged === true ? ", merged" : "";
  return `v${record.version}  seq ${record.first_seq}..${record.last_seq}  ${record.tokens} tokens${merged}  ${record.created_at}`;
}

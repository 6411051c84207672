import type { MemoryStats } from "../manager/memory-manager.js";
import { readRedisStats } from "../storage/redis-stats.js";
import { type Command, parseCommandLine, TENANT_WITH_URL, UsageError, write } from "./command.js";
import { type OpenedMemory, openMemory } from "./open-memory.js";
import { serviceClientFor } from "./service-client.js";

const WHOLE_STORE_WITH_URL =
  "with --url or MEMORY_URL, name a session: the whole store's figures are read from the system of record";

const HELP = `Usage: swisper-memory stats [<session>] [options]

With a session: its memory statistics (the specification's get_memory_stats): buffer, summaries, Redis,
config and token cache. Without one: the whole store's figures: sessions, messages and
summaries per tenant (the largest 20), and the Redis server's memory, evictions and hit ratio.

With --url (or MEMORY_URL) a session's statistics come from that running service over HTTP
(MEMORY_API_KEY is sent as the key).

Options:
  --url <url>        a running service to ask, e.g. http://127.0.0.1:8080 (default MEMORY_URL)
  --tenant <name>    tenant of the session (default "default"; with --url the API key decides)
  --json             print JSON instead of text
  -h, --help         this help`;

interface TenantRow {
  tenant: string;
  sessions: number;
  messages: number;
  summaries: number;
}

export const statsCommand: Command = {
  name: "stats",
  summary: "Print one session's memory statistics, or the whole store's",
  help: HELP,
  async run(args, { env, stdout, stderr }) {
    const { values, positionals } = parseCommandLine(
      args,
      { tenant: { type: "string" }, json: { type: "boolean" }, url: { type: "string" } },
      { min: 0, max: 1 },
    );
    const sessionId = positionals[0];
    const service = serviceClientFor(values.url, env);
    if (service) {
      if (values.tenant !== undefined) throw new UsageError(TENANT_WITH_URL);
      if (sessionId === undefined) throw new UsageError(WHOLE_STORE_WITH_URL);
      const stats = await service.get<MemoryStats>(`/v1/sessions/${encodeURIComponent(sessionId)}/stats`);
      if (stats === null) {
        write(stderr, `session '${sessionId}' at ${service.url} has no memory`);
        return 1;
      }
      printSessionStats(stdout, stats, `Session '${sessionId}' at ${service.url}`, values.json === true);
      return 0;
    }
    const opened = await openMemory(env, {
      ...(values.tenant !== undefined ? { tenant: values.tenant } : {}),
    });
    try {
      if (sessionId === undefined) {
        const report = await wholeStoreReport(opened);
        if (values.json) write(stdout, JSON.stringify(report, null, 2));
        else printWholeStore(stdout, report);
        return 0;
      }
      const stats = await opened.memory.getMemoryStats(sessionId);
      // As `clear` and the HTTP API (404): a session without memory is an error, exit 1.
      if (stats.buffer.last_seq === 0 && stats.summary.summary_count === 0) {
        write(stderr, `session '${sessionId}' (tenant '${opened.memory.tenant}') has no memory`);
        return 1;
      }
      const title = `Session '${sessionId}' (tenant '${opened.memory.tenant}')`;
      printSessionStats(stdout, stats, title, values.json === true);
      return 0;
    } finally {
      await opened.close();
    }
  },
};

/** Whole-store figures, counted from the system of record's tables, and the Redis server's. */
async function wholeStoreReport(opened: OpenedMemory) {
  const { rows } = await opened.db.query<TenantRow>(
    `SELECT s.tenant,
            count(*)::bigint AS sessions,
            coalesce(sum(s.next_seq - 1), 0)::bigint AS messages,
            (SELECT count(*) FROM memory_summaries m WHERE m.tenant = s.tenant)::bigint AS summaries
     FROM memory_sessions s GROUP BY s.tenant ORDER BY messages DESC LIMIT 20`,
  );
  const tenants = rows.map((row) => ({
    tenant: row.tenant,
    sessions: Number(row.sessions),
    messages: Number(row.messages),
    summaries: Number(row.summaries),
  }));
  const totals = { sessions: 0, messages: 0, summaries: 0 };
  for (const row of tenants) {
    totals.sessions += row.sessions;
    totals.messages += row.messages;
    totals.summaries += row.summaries;
  }
  return {
    available: opened.memory.isAvailable(),
    database: opened.databaseLabel,
    redis_configured: opened.redis !== null,
    redis: await readRedisStats(opened.redis),
    totals,
    tenants,
  };
}

function printWholeStore(
  stdout: NodeJS.WritableStream,
  report: Awaited<ReturnType<typeof wholeStoreReport>>,
) {
  write(stdout, `Memory available: ${report.available ? "yes" : "NO"}`);
  write(stdout, `System of record: ${report.database}`);
  printSection(stdout, "Totals (largest 20 tenants)", report.totals);
  write(stdout, "\nTenants:");
  const row = (tenant: string, ...figures: (string | number)[]) =>
    `  ${tenant.padEnd(24)}${figures.map((figure, i) => String(figure).padStart([10, 12, 11][i] ?? 10)).join("")}`;
  write(stdout, row("tenant", "sessions", "messages", "summaries"));
  for (const tenant of report.tenants) {
    write(stdout, row(tenant.tenant, tenant.sessions, tenant.messages, tenant.summaries));
  }
  if (report.redis_configured) printSection(stdout, "Redis", report.redis);
  else write(stdout, "\nRedis: not configured (served from the system of record)");
}

function printSessionStats(stdout: NodeJS.WritableStream, stats: MemoryStats, title: string, json: boolean) {
  if (json) {
    write(stdout, JSON.stringify(stats, null, 2));
    return;
  }
  write(stdout, title);
  printSection(stdout, "Buffer", stats.buffer);
  printSection(stdout, "Summaries", stats.summary);
  printSection(stdout, "Redis", stats.redis);
  printSection(stdout, "Session config", stats.session_config);
  printSection(stdout, "Token cache (the counting process)", stats.token_cache);
  write(stdout, `\nMemory available: ${stats.available ? "yes" : "NO"}`);
}

function printSection(stdout: NodeJS.WritableStream, title: string, figures: object): void {
  write(stdout, `\n${title}:`);
  for (const [key, value] of Object.entries(figures)) write(stdout, `  ${key.padEnd(24)}${String(value)}`);
}

import { readRedisStats } from "../storage/redis-stats.js";
import { type Command, parseCommandLine, write } from "./command.js";
import { openMemory } from "./open-memory.js";

const HELP = `Usage: swisper-memory stats [<session>] [options]

With a session: its memory statistics (the specification's get_memory_stats): buffer, summaries, Redis,
config and token cache. Without one: the whole store's figures: sessions, messages and
summaries per tenant (the largest 20), and the Redis server's memory, evictions and hit ratio.

Options:
  --tenant <name>    tenant of the session (default "default")
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
      { tenant: { type: "string" }, json: { type: "boolean" } },
      { min: 0, max: 1 },
    );
    const opened = await openMemory(env, {
      ...(values.tenant !== undefined ? { tenant: values.tenant } : {}),
    });
    try {
      const sessionId = positionals[0];
      if (sessionId !== undefined) {
        const stats = await opened.memory.getMemoryStats(sessionId);
        // As `clear` and the HTTP API (404): a session without memory is an error, exit 1.
        if (stats.buffer.last_seq === 0 && stats.summary.summary_count === 0) {
          write(stderr, `session '${sessionId}' (tenant '${opened.memory.tenant}') has no memory`);
          return 1;
        }
        if (values.json) {
          write(stdout, JSON.stringify(stats, null, 2));
          return 0;
        }
        write(stdout, `Session '${sessionId}' (tenant '${opened.memory.tenant}')`);
        printSection(stdout, "Buffer", stats.buffer);
        printSection(stdout, "Summaries", stats.summary);
        printSection(stdout, "Redis", stats.redis);
        printSection(stdout, "Session config", stats.session_config);
        printSection(stdout, "Token cache (this process)", stats.token_cache);
        write(stdout, `\nMemory available: ${stats.available ? "yes" : "NO"}`);
        return 0;
      }

      // Whole-store figures are counted from the system of record's tables.
      const { rows: tenants } = await opened.db.query<TenantRow>(
        `SELECT s.tenant,
                count(*)::bigint AS sessions,
                coalesce(sum(s.next_seq - 1), 0)::bigint AS messages,
                (SELECT count(*) FROM memory_summaries m WHERE m.tenant = s.tenant)::bigint AS summaries
         FROM memory_sessions s GROUP BY s.tenant ORDER BY messages DESC LIMIT 20`,
      );
      const redis = await readRedisStats(opened.redis);
      const totals = tenants.reduce(
        (sum, row) => ({
          sessions: sum.sessions + Number(row.sessions),
          messages: sum.messages + Number(row.messages),
          summaries: sum.summaries + Number(row.summaries),
        }),
        { sessions: 0, messages: 0, summaries: 0 },
      );
      const report = {
        available: opened.memory.isAvailable(),
        database: opened.databaseLabel,
        redis_configured: opened.redis !== null,
        redis,
        totals,
        tenants: tenants.map((row) => ({
          tenant: row.tenant,
          sessions: Number(row.sessions),
          messages: Number(row.messages),
          summaries: Number(row.summaries),
        })),
      };
      if (values.json) {
        write(stdout, JSON.stringify(report, null, 2));
        return 0;
      }
      write(stdout, `Memory available: ${report.available ? "yes" : "NO"}`);
      write(stdout, `System of record: ${report.database}`);
      printSection(stdout, "Totals (largest 20 tenants)", totals);
      write(stdout, "\nTenants:");
      write(
        stdout,
        `  ${"tenant".padEnd(24)}${"sessions".padStart(10)}${"messages".padStart(12)}${"summaries".padStart(11)}`,
      );
      for (const row of report.tenants) {
        write(
          stdout,
          `  ${row.tenant.padEnd(24)}${String(row.sessions).padStart(10)}${String(row.messages).padStart(12)}${String(row.summaries).padStart(11)}`,
        );
      }
      if (report.redis_configured) printSection(stdout, "Redis", redis);
      else write(stdout, "\nRedis: not configured (served from the system of record)");
      return 0;
    } finally {
      await opened.close();
    }
  },
};

function printSection(stdout: NodeJS.WritableStream, title: string, figures: object): void {
  write(stdout, `\n${title}:`);
  for (const [key, value] of Object.entries(figures)) write(stdout, `  ${key.padEnd(24)}${String(value)}`);
}

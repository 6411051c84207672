import { breakersOf } from "../service/health.js";
import type { StoredMessage, SummaryRecord } from "../types.js";
import { type Command, integerOption, parseCommandLine, write } from "./command.js";
import { openMemory } from "./open-memory.js";

const HELP = `Usage: swisper-memory inspect <session> [options]

Prints what the specification's Debug Commands print for one session: whether memory is available, the
circuit breakers' states, the buffer's info and messages, the current summary and the summary
history, and the session's config. Reads only; opens the storage the environment configures
(DATABASE_URL or MEMORY_DATA_DIR, REDIS_URL).

Options:
  --tenant <name>    tenant of the session (default "default")
  --messages <n>     newest buffer messages to print (default 20; 0 prints none)
  --history <n>      summary versions to print, newest first (default 10)
  --json             print one JSON object instead of text
  -h, --help         this help`;

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
      },
      { min: 1, max: 1 },
    );
    const sessionId = positionals[0]!;
    const messageLimit = integerOption(values.messages, "messages", 20, 0, 10_000);
    const historyLimit = integerOption(values.history, "history", 10, 1, 1000);
    const opened = await openMemory(env, {
      ...(values.tenant !== undefined ? { tenant: values.tenant } : {}),
    });
    try {
      const { memory, redis } = opened;
      const [bufferInfo, messages, currentSummary, history, config] = await Promise.all([
        memory.bufferStore.getBufferInfo(sessionId),
        messageLimit > 0 ? memory.bufferStore.getMessages(sessionId, messageLimit) : Promise.resolve([]),
        memory.summaryStore.getCurrentSummary(sessionId),
        memory.summaryStore.getSummaryHistory(sessionId, historyLimit),
        memory.getSessionConfig(sessionId),
      ]);
      const report = {
        session_id: sessionId,
        tenant: memory.tenant,
        available: memory.isAvailable(),
        database: opened.databaseLabel,
        redis: redis === null ? "not configured" : redis.isReady ? "connected" : "unreachable",
        circuit_breakers: breakersOf(memory),
        buffer_info: bufferInfo,
        buffer_messages: messages,
        current_summary: currentSummary,
        summary_history: history,
        session_config: config,
      };
      // As `clear` and the HTTP API (404): a session without memory is an error, exit 1.
      if (bufferInfo.last_seq === 0 && history.length === 0) {
        write(stderr, `session '${sessionId}' (tenant '${memory.tenant}') has no memory`);
        return 1;
      }
      if (values.json) {
        write(stdout, JSON.stringify(report, null, 2));
        return 0;
      }

      write(stdout, `Session '${sessionId}' (tenant '${report.tenant}')`);
      write(stdout);
      write(stdout, `Memory available:  ${report.available ? "yes" : "NO"}`);
      write(stdout, `System of record:  ${report.database}`);
      write(stdout, `Redis:             ${report.redis}`);
      if (report.circuit_breakers.length === 0) {
        write(stdout, "Circuit breakers:  none reported by the manager");
      } else {
        for (const breaker of report.circuit_breakers) {
          const detail =
            breaker.state === "open"
              ? `, retry in ${breaker.retry_after_ms} ms, last error: ${breaker.last_error}`
              : "";
          write(
            stdout,
            `Circuit breaker:   ${breaker.name} ${breaker.state.toUpperCase()} (${breaker.failures} failures${detail})`,
          );
        }
      }
      write(stdout);
      write(stdout, "Buffer info:");
      for (const [key, value] of Object.entries(bufferInfo))
        write(stdout, `  ${key.padEnd(24)}${String(value)}`);
      write(stdout);
      write(
        stdout,
        messageLimit === 0
          ? "Buffer messages: (not printed; --messages 0)"
          : messages.length === 0
            ? "Buffer messages: none"
            : `Buffer messages (newest ${messages.length} of ${bufferInfo.message_count}, oldest first):`,
      );
      for (const message of messages) write(stdout, `  ${formatMessage(message)}`);
      write(stdout);
      const current = history[0];
      if (currentSummary === null || !current) {
        write(stdout, "Current summary: none yet");
      } else {
        write(
          stdout,
          `Current summary (version ${current.version}, covers seq 1..${current.last_seq}, ${current.tokens} tokens):`,
        );
        for (const line of currentSummary.split("\n")) write(stdout, `  ${line}`);
      }
      write(stdout);
      write(
        stdout,
        history.length === 0 ? "Summary history: none" : `Summary history (newest ${history.length}):`,
      );
      for (const record of history) write(stdout, `  ${formatSummary(record)}`);
      write(stdout);
      write(stdout, "Session config:");
      for (const [key, value] of Object.entries(config)) write(stdout, `  ${key.padEnd(24)}${value}`);
      return 0;
    } finally {
      await opened.close();
    }
  },
};

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

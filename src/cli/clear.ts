import { createInterface } from "node:readline/promises";
import { type Command, parseCommandLine, UsageError, write } from "./command.js";
import { openMemory } from "./open-memory.js";

const HELP = `Usage: swisper-memory clear <session> [options]

Erases the session everywhere: transcript, summaries, config, saved SwisperContext and its Redis
keys. Nothing comes back. Asks for confirmation on a terminal; elsewhere, pass --yes.

Options:
  --tenant <name>    tenant of the session (default "default")
  --yes              do not ask
  -h, --help         this help

Exit code 1 when the session has no memory.`;

export const clearCommand: Command = {
  name: "clear",
  summary: "Erase a session everywhere (Redis and PostgreSQL)",
  help: HELP,
  async run(args, { env, stdout, stderr }) {
    const { values, positionals } = parseCommandLine(
      args,
      { tenant: { type: "string" }, yes: { type: "boolean" } },
      { min: 1, max: 1 },
    );
    const sessionId = positionals[0]!;
    const interactive = process.stdin.isTTY === true && stdout === process.stdout;
    if (!values.yes && !interactive) throw new UsageError("clear erases data: pass --yes to confirm");
    const opened = await openMemory(env, {
      ...(values.tenant !== undefined ? { tenant: values.tenant } : {}),
    });
    try {
      const { memory } = opened;
      const [stats, saved] = await Promise.all([
        memory.getMemoryStats(sessionId),
        memory.loadContext(sessionId),
      ]);
      if (stats.buffer.last_seq === 0 && stats.summary.summary_count === 0 && saved === null) {
        write(stderr, `session '${sessionId}' (tenant '${memory.tenant}') has no memory`);
        return 1;
      }
      const what =
        `session '${sessionId}' (tenant '${memory.tenant}'): ${plural(stats.buffer.last_seq, "message", "messages")}, ` +
        `${plural(stats.summary.summary_count, "summary", "summaries")}${saved ? ", a saved SwisperContext" : ""}`;
      if (!values.yes) {
        const prompt = createInterface({ input: process.stdin, output: process.stdout });
        const answer = await prompt.question(`Erase ${what}? Type the session id to confirm: `);
        prompt.close();
        if (answer.trim() !== sessionId) {
          write(stderr, "not erased");
          return 1;
        }
      }
      await memory.clearSessionMemory(sessionId);
      write(stdout, `erased ${what}`);
      return 0;
    } finally {
      await opened.close();
    }
  },
};

function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}

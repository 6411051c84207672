import { type Command, parseCommandLine, UsageError, write } from "./command.js";
import { openMemory } from "./open-memory.js";

const HELP = `Usage: swisper-memory retention sweep [--dry-run] [--json]

Runs one retention sweep now, over every tenant: erases each session idle (no write) longer
than its retention, everywhere (transcript, summaries, config, SwisperContext, Redis), as
clearSessionMemory erases one. A session's retention is its config key retention_days, else its
tenant's (MEMORY_RETENTION_TENANT_DAYS), else MEMORY_RETENTION_DAYS; unset everywhere: kept
forever. The service sweeps on its own every MEMORY_RETENTION_SWEEP_SECONDS (default 900); one
process sweeps at a time, so this waits for nothing and does nothing while another one sweeps
(exit code 1). Opens the storage the environment configures (DATABASE_URL or MEMORY_DATA_DIR,
REDIS_URL).

Options:
  --dry-run    erase nothing; count the sessions and messages a sweep would erase now
  --json       the result as one JSON object
  -h, --help   this help`;

export const retentionCommand: Command = {
  name: "retention",
  summary: "Erase the sessions idle longer than their retention (one sweep now; --dry-run counts)",
  help: HELP,
  async run(args, { env, stdout, stderr }) {
    const { values, positionals } = parseCommandLine(
      args,
      { "dry-run": { type: "boolean" }, json: { type: "boolean" } },
      { min: 1, max: 1 },
    );
    if (positionals[0] !== "sweep")
      throw new UsageError(`unknown retention command '${positionals[0]}'; known: sweep`);
    const opened = await openMemory(env);
    try {
      const result = await opened.memory.sweepRetention({ dry_run: values["dry-run"] === true });
      if (values.json) write(stdout, JSON.stringify(result));
      else if (!result.ran) write(stderr, "another process is sweeping now: nothing was done");
      else {
        const verb = result.dry_run ? "would erase" : "erased";
        write(stdout, `${verb} ${result.sessions_erased} sessions (${result.messages_erased} messages)`);
      }
      return result.ran ? 0 : 1;
    } finally {
      await opened.close();
    }
  },
};

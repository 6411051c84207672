import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { ImportTotals } from "../schemas/export.js";
import { splitLines } from "../sessions/import.js";
import { type Command, parseCommandLine, TENANT_WITH_URL, UsageError, write } from "./command.js";
import { openMemory } from "./open-memory.js";
import { Progress } from "./progress.js";
import { serviceClientFor } from "./service-client.js";

const HELP = `Usage: swisper-memory import <file.jsonl> [options]

Restores what 'swisper-memory export' wrote (or GET /v1/sessions/{id}/export answered), exactly:
seqs, times, tokens, summary versions with their ranges, config and SwisperContext. Each session
is stored whole or not at all, while the file streams in. A session already stored with the same
content is left alone, so importing a file twice stores nothing twice. Opens the storage the
environment configures (DATABASE_URL or MEMORY_DATA_DIR), or, with --url or MEMORY_URL, sends the
file to that running service (POST /v1/imports, at most 256 MiB; MEMORY_API_KEY is sent as the
key, whose tenant every session goes to).

Options:
  --url <url>       a running service to send it to (default MEMORY_URL)
  --tenant <name>   import every session into this tenant (default: the tenant each session's
                    line names; with --url the API key decides)
  --quiet           no progress on stderr
  -h, --help        this help

Exit codes: 0 imported; 1 a bad line (named by its number and field) or a session that exists
with other content: nothing of that session was stored, the sessions before it were (run it again
once fixed: they are left alone); 2 usage.`;

export const importCommand: Command = {
  name: "import",
  summary: "Restore sessions from an export (JSON Lines)",
  help: HELP,
  async run(args, { env, stderr }) {
    const { values, positionals } = parseCommandLine(
      args,
      { url: { type: "string" }, tenant: { type: "string" }, quiet: { type: "boolean" } },
      { min: 1, max: 1 },
    );
    const file = positionals[0] as string;
    const size = await stat(file).then(
      (stats) => stats.size,
      () => {
        throw new UsageError(`cannot read '${file}'`);
      },
    );
    const service = serviceClientFor(values.url, env);
    if (service && values.tenant !== undefined) throw new UsageError(TENANT_WITH_URL);
    const progress = values.quiet ? null : new Progress({ stream: stderr, label: "import", total: size });
    const started = performance.now();
    const chunks = counted(createReadStream(file), progress);
    let totals: ImportTotals;
    if (service) {
      totals = await service.postStream<ImportTotals>("/v1/imports", chunks, "application/x-ndjson");
    } else {
      const opened = await openMemory(env, values.tenant !== undefined ? { tenant: values.tenant } : {});
      try {
        const keepTenants = values.tenant === undefined;
        totals = await opened.memory.importSessions(splitLines(chunks), { keepTenants });
      } finally {
        await opened.close();
      }
    }
    progress?.finish();
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    write(
      stderr,
      `import: ${totals.sessions} sessions read, ${totals.sessions_imported} imported, ` +
        `${totals.sessions_unchanged} unchanged; ${totals.messages_imported} messages and ` +
        `${totals.summaries_imported} summary versions stored in ${seconds}s`,
    );
    return 0;
  },
};

/** The file's chunks, each counted on the progress bar (in bytes). */
async function* counted(chunks: AsyncIterable<Buffer>, progress: Progress | null): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    progress?.tick(chunk.length);
    yield chunk;
  }
}

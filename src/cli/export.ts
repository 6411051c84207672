import { once } from "node:events";
import { countSessions } from "../sessions/export.js";
import {
  type CliContext,
  type Command,
  parseCommandLine,
  TENANT_WITH_URL,
  UsageError,
  write,
} from "./command.js";
import { openMemory } from "./open-memory.js";
import { Progress } from "./progress.js";
import { type ServiceClient, serviceClientFor } from "./service-client.js";

const HELP = `Usage: swisper-memory export [options] > file.jsonl

Writes the tenant's sessions (or one) to stdout as JSON Lines: a header, then each session's
record, messages, summary versions with their ranges, config and SwisperContext, then an end line
(the format is in the README). 'swisper-memory import' restores it exactly. Read a page at a time:
memory stays small whatever the tenant's size. Opens the storage the environment configures
(DATABASE_URL or MEMORY_DATA_DIR), or, with --url or MEMORY_URL, asks that running service for
one session (GET /v1/sessions/{id}/export; MEMORY_API_KEY is sent as the key): needs --session.

Options:
  --url <url>       a running service to ask (default MEMORY_URL)
  --tenant <name>   tenant (default "default"; with --url the API key decides)
  --session <id>    only this session
  --quiet           no progress on stderr
  -h, --help        this help

Progress and the totals go to stderr. Exit codes: 0 exported, 1 failed (or --session has no
memory), 2 usage.`;

export const exportCommand: Command = {
  name: "export",
  summary: "Export a tenant's sessions (or one) as JSON Lines",
  help: HELP,
  async run(args, { env, stdout, stderr }) {
    const { values } = parseCommandLine(
      args,
      {
        url: { type: "string" },
        tenant: { type: "string" },
        session: { type: "string" },
        quiet: { type: "boolean" },
      },
      { min: 0, max: 0 },
    );
    const service = serviceClientFor(values.url, env);
    if (service) {
      if (values.tenant !== undefined) throw new UsageError(TENANT_WITH_URL);
      if (values.session === undefined) {
        throw new UsageError(
          "with --url or MEMORY_URL, give --session: the service exports one session at a time",
        );
      }
      return exportFromService(service, values.session, { stdout, stderr });
    }
    const opened = await openMemory(env, values.tenant !== undefined ? { tenant: values.tenant } : {});
    try {
      const total = values.session !== undefined ? 1 : await countSessions(opened.db, opened.memory.tenant);
      const progress = values.quiet
        ? null
        : new Progress({ stream: stderr, label: "export", total, rateUnit: "sessions" });
      const started = performance.now();
      let sessions = 0;
      let messages = 0;
      const lines = opened.memory.exportSessions({
        ...(values.session !== undefined ? { session_id: values.session } : {}),
        onSession: (_id, count) => {
          sessions += 1;
          messages += count;
          progress?.tick();
        },
      });
      for await (const line of lines) await writeLine(stdout, line);
      progress?.finish();
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      write(stderr, `export: ${sessions} sessions, ${messages} messages in ${seconds}s`);
      if (values.session !== undefined && sessions === 0) {
        write(stderr, `swisper-memory export: session '${values.session}' has no memory`);
        return 1;
      }
      return 0;
    } finally {
      await opened.close();
    }
  },
};

/** One session's export, as the service streams it. */
async function exportFromService(
  service: ServiceClient,
  sessionId: string,
  { stdout, stderr }: Pick<CliContext, "stdout" | "stderr">,
): Promise<number> {
  const lines = await service.lines(`/v1/sessions/${encodeURIComponent(sessionId)}/export`);
  if (!lines) {
    write(stderr, `swisper-memory export: session '${sessionId}' has no memory`);
    return 1;
  }
  let messages = 0;
  for await (const line of lines) {
    if (line.startsWith('{"type":"message"')) messages += 1;
    await writeLine(stdout, line);
  }
  write(stderr, `export: 1 sessions, ${messages} messages`);
  return 0;
}

/** Writes a line, waiting while the reader is behind: memory holds a page, not the whole export. */
async function writeLine(stream: NodeJS.WritableStream, line: string): Promise<void> {
  if (!stream.write(`${line}\n`)) await once(stream, "drain");
}

import { createInterface } from "node:readline/promises";
import type { MemoryStats } from "../manager/memory-manager.js";
import {
  type Command,
  type Environment,
  parseCommandLine,
  TENANT_WITH_URL,
  UsageError,
  write,
} from "./command.js";
import { openMemory } from "./open-memory.js";
import { type ServiceClient, serviceClientFor } from "./service-client.js";

const HELP = `Usage: swisper-memory clear <session> [options]

Erases the session everywhere: transcript, summaries, config, saved SwisperContext and its Redis
keys. Nothing comes back. Asks for confirmation on a terminal; elsewhere, pass --yes.

With --url (or MEMORY_URL) the running service erases it (DELETE /v1/sessions/<session>;
MEMORY_API_KEY is sent as the key).

Options:
  --url <url>        a running service to ask, e.g. http://127.0.0.1:8080 (default MEMORY_URL)
  --tenant <name>    tenant of the session (default "default"; with --url the API key decides)
  --yes              do not ask
  -h, --help         this help

Exit code 1 when the session has no memory.`;

/** The session to erase, as the storage or the service describes it, and how to erase it. */
interface Target {
  /** "session 'x' (tenant 't'): 3 messages, 1 summary", or null when it has no memory. */
  what: string | null;
  erase(): Promise<void>;
  close(): Promise<void>;
}

export const clearCommand: Command = {
  name: "clear",
  summary: "Erase a session everywhere (Redis and PostgreSQL)",
  help: HELP,
  async run(args, { env, stdout, stderr }) {
    const { values, positionals } = parseCommandLine(
      args,
      { tenant: { type: "string" }, yes: { type: "boolean" }, url: { type: "string" } },
      { min: 1, max: 1 },
    );
    // biome-ignore lint/style/noNonNullAssertion: parseCommandLine required one positional
    const sessionId = positionals[0]!;
    const interactive = process.stdin.isTTY === true && stdout === process.stdout;
    if (!values.yes && !interactive) throw new UsageError("clear erases data: pass --yes to confirm");
    const service = serviceClientFor(values.url, env);
    if (service && values.tenant !== undefined) throw new UsageError(TENANT_WITH_URL);
    const target = service
      ? await remoteTarget(service, sessionId)
      : await localTarget(env, values.tenant, sessionId);
    try {
      if (target.what === null) {
        write(
          stderr,
          `session '${sessionId}' ${service ? `at ${service.url}` : `(tenant '${values.tenant ?? "default"}')`} has no memory`,
        );
        return 1;
      }
      if (!values.yes && !(await confirmed(target.what, sessionId))) {
        write(stderr, "not erased");
        return 1;
      }
      await target.erase();
      write(stdout, `erased ${target.what}`);
      return 0;
    } finally {
      await target.close();
    }
  },
};

async function localTarget(env: Environment, tenant: string | undefined, sessionId: string): Promise<Target> {
  const opened = await openMemory(env, tenant !== undefined ? { tenant } : {});
  const { memory } = opened;
  try {
    const [stats, saved] = await Promise.all([
      memory.getMemoryStats(sessionId),
      memory.loadContext(sessionId),
    ]);
    const empty = stats.buffer.last_seq === 0 && stats.summary.summary_count === 0 && saved === null;
    return {
      what: empty
        ? null
        : describe(`session '${sessionId}' (tenant '${memory.tenant}')`, stats, saved !== null),
      erase: async () => {
        await memory.clearSessionMemory(sessionId);
      },
      close: () => opened.close(),
    };
  } catch (error) {
    await opened.close();
    throw error;
  }
}

/** Erased by the running service (DELETE), which also drops its own Redis copy and caches. */
async function remoteTarget(service: ServiceClient, sessionId: string): Promise<Target> {
  const session = `/v1/sessions/${encodeURIComponent(sessionId)}`;
  const [stats, saved] = await Promise.all([
    service.get<MemoryStats>(`${session}/stats`),
    service.get<unknown>(`${session}/swisper-context`),
  ]);
  const empty = stats === null && saved === null;
  const counts = stats ?? { buffer: { last_seq: 0 }, summary: { summary_count: 0 } };
  return {
    what: empty ? null : describe(`session '${sessionId}' at ${service.url}`, counts, saved !== null),
    async erase() {
      if (!(await service.delete(session))) throw new Error(`session '${sessionId}' was erased meanwhile`);
    },
    close: async () => {},
  };
}

function describe(
  session: string,
  stats: { buffer: { last_seq: number }; summary: { summary_count: number } },
  saved: boolean,
): string {
  return (
    `${session}: ${plural(stats.buffer.last_seq, "message", "messages")}, ` +
    `${plural(stats.summary.summary_count, "summary", "summaries")}${saved ? ", a saved SwisperContext" : ""}`
  );
}

async function confirmed(what: string, sessionId: string): Promise<boolean> {
  const prompt = createInterface({ input: process.stdin, output: process.stdout });
  const answer = await prompt.question(`Erase ${what}? Type the session id to confirm: `);
  prompt.close();
  return answer.trim() === sessionId;
}

function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}

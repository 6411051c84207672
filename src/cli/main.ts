#!/usr/bin/env node
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { readProductEnvironment } from "../environment.js";
import { benchCommand } from "./bench.js";
import { clearCommand } from "./clear.js";
import { type CliContext, type Command, describeError, UsageError, write } from "./command.js";
import { demoCommand } from "./demo.js";
import { exportCommand } from "./export.js";
import { importCommand } from "./import.js";
import { inspectCommand } from "./inspect.js";
import { legacyCommand } from "./legacy.js";
import { migrateCommand } from "./migrate.js";
import { retentionCommand } from "./retention.js";
import { searchCommand } from "./search.js";
import { serveCommand } from "./serve.js";
import { sessionsCommand } from "./sessions.js";
import { statsCommand } from "./stats.js";

export const COMMANDS: readonly Command[] = [
  serveCommand,
  migrateCommand,
  inspectCommand,
  statsCommand,
  sessionsCommand,
  searchCommand,
  exportCommand,
  importCommand,
  retentionCommand,
  clearCommand,
  benchCommand,
  demoCommand,
  legacyCommand,
];

const HELP = `swisper-memory: session memory for LLM chat applications

Usage: swisper-memory <command> [options]

Commands:
${COMMANDS.map((command) => `  ${command.name.padEnd(10)} ${command.summary}`).join("\n")}

Environment:
  DATABASE_URL       PostgreSQL system of record (default: embedded PGlite in MEMORY_DATA_DIR)
  MEMORY_DATA_DIR    Embedded database folder (default ./.swisper-memory)
  REDIS_URL          Redis hot tier, or REDIS_HOST / REDIS_PORT / REDIS_DB (default: none)
  MEMORY_URL         inspect, stats, sessions, search, clear, export and import ask this running service (or --url)
  MEMORY_API_KEY     the API key they send to it
  LEGACY_DATABASE_URL  legacy: the database with the legacy swisper_sessions table

Run 'swisper-memory <command> --help' for a command's options.`;

/** Runs one command line; returns the exit code (0 ok, 1 failed, 2 usage). */
export async function main(argv: string[], context: CliContext): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    write(name === undefined ? context.stderr : context.stdout, HELP);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (!command) {
    write(context.stderr, `Unknown command '${name}'.\n\n${HELP}`);
    return 2;
  }
  if (args.includes("--help") || args.includes("-h")) {
    write(context.stdout, command.help);
    return 0;
  }
  try {
    // Every variable the product reads is checked before anything opens: a bad one names itself.
    readProductEnvironment(context.env);
    return await command.run(args, context);
  } catch (error) {
    if (error instanceof UsageError) {
      write(context.stderr, `swisper-memory ${name}: ${error.message}\n\n${command.help}`);
      return 2;
    }
    write(context.stderr, `swisper-memory ${name}: ${describeError(error)}`);
    return 1;
  }
}

// Run when executed (node dist/cli/main.js, the bin link, tsx src/cli/main.ts), not when imported.
const invoked = process.argv[1] ? realpathSync(process.argv[1]) : "";
if (invoked === fileURLToPath(import.meta.url)) {
  // Output piped into a reader that stopped (`demo | head -1`) is not an error of ours.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw error;
  });
  main(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr }).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`${describeError(error)}\n`);
      process.exitCode = 1;
    },
  );
}

#!/usr/bin/env node
import { createMemoryManager } from "../manager/create-memory-manager.js";
import { PgliteDatabase, PostgresDatabase } from "../storage/database.js";
import { migrate } from "../storage/migrator.js";

const HELP = `swisper-memory: session memory for LLM chat applications

Usage: swisper-memory <command> [options]

Commands:
  demo       Run a short conversation through the library and print its context
  migrate    Apply pending schema migrations to DATABASE_URL (or the embedded database)

Environment:
  DATABASE_URL       PostgreSQL system of record (default: embedded PGlite in MEMORY_DATA_DIR)
  MEMORY_DATA_DIR    Embedded database folder (default ./.swisper-memory)
  REDIS_URL          Redis hot tier, or REDIS_HOST / REDIS_PORT / REDIS_DB (default: none)

Run 'swisper-memory <command> --help' for a command's options.`;

const COMMANDS: Record<string, { help: string; run: (args: string[]) => Promise<number> }> = {
  demo: {
    help: "Usage: swisper-memory demo\n\nAdds a short shopping conversation to session 'demo' and prints its context.",
    run: runDemo,
  },
  migrate: {
    help: "Usage: swisper-memory migrate\n\nApplies pending migrations to DATABASE_URL, or to the embedded database in MEMORY_DATA_DIR.",
    run: runMigrate,
  },
};

async function runDemo(): Promise<number> {
  const memory = await createMemoryManager();
  try {
    const session = "demo";
    await memory.clearSessionMemory(session);
    const turns = [
      { role: "user" as const, content: "I want to buy a laptop for university, under 1500 CHF." },
      { role: "assistant" as const, content: "Do you prefer a light model or a bigger screen?" },
      { role: "user" as const, content: "Light, under 1.5 kg. I like Lenovo and Dell." },
      { role: "assistant" as const, content: "The Lenovo ThinkPad X1 Carbon (1.12 kg, 1399 CHF) fits both." },
    ];
    for (const turn of turns) await memory.addMessage(session, turn);
    const context = await memory.getContext(session, { max_tokens: 120 });
    const where = memory.bufferStore.source === "redis" ? "Redis + system of record" : "the system of record";
    console.log(`Stored ${context.message_count} messages in ${where}.`);
    console.log(
      JSON.stringify({ buffer_info: context.buffer_info, total_tokens: context.total_tokens }, null, 2),
    );
    console.log(`Packed for gpt-4o within 120 tokens (${context.context_tokens} used):`);
    for (const message of context.messages ?? [])
      console.log(`  ${message.role}: ${String(message.content)}`);
    return 0;
  } finally {
    await memory.close();
  }
}

async function runMigrate(): Promise<number> {
  const url = process.env.DATABASE_URL;
  const db = url
    ? new PostgresDatabase({ connectionString: url })
    : new PgliteDatabase({ dataDir: process.env.MEMORY_DATA_DIR ?? "./.swisper-memory" });
  try {
    const run = await migrate(db);
    for (const result of run.results) console.log(`${result.status.padEnd(16)} ${result.name}`);
    if (run.error) {
      console.error(run.error.message);
      return 1;
    }
    return 0;
  } finally {
    await db.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(HELP);
    return name === undefined ? 1 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`Unknown command '${name}'.\n\n${HELP}`);
    return 2;
  }
  if (args.includes("--help") || args.includes("-h")) {
    console.log(command.help);
    return 0;
  }
  return command.run(args);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  },
);

import { createMemoryManager } from "../manager/create-memory-manager.js";
import { type Command, write } from "./command.js";

export const demoCommand: Command = {
  name: "demo",
  summary: "Run a short conversation through the library and print its context",
  help: `Usage: swisper-memory demo

Adds a short shopping conversation to session 'demo' (tenant 'default') and prints its buffer
info and a context packed into 120 tokens. Uses DATABASE_URL / REDIS_URL when set, else the
embedded database in MEMORY_DATA_DIR.`,
  async run(_args, { env, stdout }) {
    const memory = await createMemoryManager({ env });
    try {
      const session = "demo";
      await memory.clearSessionMemory(session);
      const turns = [
        { role: "user" as const, content: "I want to buy a laptop for university, under 1500 CHF." },
        { role: "assistant" as const, content: "Do you prefer a light model or a bigger screen?" },
        { role: "user" as const, content: "Light, under 1.5 kg. I like Lenovo and Dell." },
        {
          role: "assistant" as const,
          content: "The Lenovo ThinkPad X1 Carbon (1.12 kg, 1399 CHF) fits both.",
        },
      ];
      for (const turn of turns) await memory.addMessage(session, turn);
      const context = await memory.getContext(session, { max_tokens: 120 });
      const where =
        memory.bufferStore.source === "redis" ? "Redis + system of record" : "the system of record";
      write(stdout, `Stored ${context.message_count} messages in ${where}.`);
      write(
        stdout,
        JSON.stringify({ buffer_info: context.buffer_info, total_tokens: context.total_tokens }, null, 2),
      );
      write(stdout, `Packed for gpt-4o within 120 tokens (${context.context_tokens} used):`);
      for (const message of context.messages ?? [])
        write(stdout, `  ${message.role}: ${String(message.content)}`);
      return 0;
    } finally {
      await memory.close();
    }
  },
};

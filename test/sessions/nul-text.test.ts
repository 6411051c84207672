import { afterAll, beforeAll, expect, it } from "vitest";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { uniqueName, useTestServers } from "../support/servers.js";
import { inEveryDatabase, type Opener } from "./deployments.js";

// A message may hold U+0000; PostgreSQL's text cannot. The transcript keeps the message exactly,
// and what is taken as text from it (the listing's title and preview, the search index) leaves
// the NUL out instead of failing the write. "\\u0000" written out (a backslash, then "u0000") is
// text like any other.
const servers = useTestServers();

function nulSuite(open: Opener): void {
  let memory: MemoryManager;
  let close: () => Promise<void>;
  beforeAll(async () => {
    const opened = await open();
    memory = opened.memory.forTenant(uniqueName("nul"));
    close = opened.close;
  });
  afterAll(async () => {
    await close();
  });

  it("stores messages holding U+0000 exactly, and lists and finds them by their other text", async () => {
    const messages = [
      { role: "user" as const, content: "nul\u0000here and\u0000\u0000twice" },
      { role: "assistant" as const, content: "a literal \\u0000 and \\\\\u0000 stays" },
      { role: "user" as const, content: [{ type: "text" as const, text: "part\u0000with zebra" }] },
    ];
    await memory.addMessages("s", messages);
    const page = await memory.getTranscript("s");
    expect(page.messages.map((message) => message.content)).toEqual(
      messages.map((message) => message.content),
    );
    expect(await memory.getSession("s")).toMatchObject({
      title: "nulhere andtwice",
      last_user_message: "partwith zebra",
    });
    const found = await memory.searchMessages({ q: "zebra" });
    expect(found.results.map((result) => result.seq)).toEqual([3]);
    const literal = await memory.searchMessages({ q: "stays" });
    expect(literal.results.map((result) => result.seq)).toEqual([2]);
  });
}

inEveryDatabase("Messages holding U+0000", servers, nulSuite);

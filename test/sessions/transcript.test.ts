import { afterAll, beforeAll, expect, it } from "vitest";
import { ValidationError } from "../../src/errors.js";
import type { MemoryManager, TranscriptPage } from "../../src/manager/memory-manager.js";
import { uniqueName, useTestServers } from "../support/servers.js";
import { inEveryDatabase, type Opener } from "./deployments.js";

const servers = useTestServers();

function transcriptSuite(open: Opener): void {
  let memory: MemoryManager;
  let close: () => Promise<void>;
  beforeAll(async () => {
    const opened = await open();
    memory = opened.memory.forTenant(uniqueName("transcript"));
    close = opened.close;
  });
  afterAll(async () => {
    await close();
  });

  it("pages through every message ever written, summarized ones marked", async () => {
    // Small caps: summaries cover the oldest messages, which leave the buffer.
    await memory.setSessionConfig("t", {
      summary_trigger_tokens: 60,
      max_buffer_tokens: 300,
      keep_recent_tokens: 20,
      max_summary_tokens: 60,
    });
    for (let turn = 0; turn < 12; turn++) {
      await memory.addMessage("t", {
        role: "user",
        content: `Turn ${turn}: I want a light laptop under 1500 CHF.`,
      });
    }
    await memory.waitForIdle();
    const context = await memory.getContext("t");
    const covered = context.summary?.last_seq ?? 0;
    expect(covered, "a summary covers the oldest messages").toBeGreaterThan(0);
    expect(context.buffer_messages.length).toBeLessThan(12);
    const pages: TranscriptPage[] = [];
    let afterSeq = 0;
    for (;;) {
      const page = await memory.getTranscript("t", { after_seq: afterSeq, limit: 5 });
      pages.push(page);
      if (page.next_after_seq === null) break;
      afterSeq = page.next_after_seq;
    }
    expect(pages.map((page) => page.messages.length)).toEqual([5, 5, 2]);
    const messages = pages.flatMap((page) => page.messages);
    expect(messages.map((message) => message.seq)).toEqual(
      Array.from({ length: 12 }, (_, index) => index + 1),
    );
    expect(messages.map((message) => message.content)).toEqual(
      Array.from({ length: 12 }, (_, turn) => `Turn ${turn}: I want a light laptop under 1500 CHF.`),
    );
    for (const message of messages) {
      expect(message.summarized, `seq ${message.seq}`).toBe(message.seq <= covered);
      expect(message.tokens).toBeGreaterThan(0);
    }
    // A page ending exactly at the newest message says so.
    expect((await memory.getTranscript("t", { after_seq: 7, limit: 5 })).next_after_seq).toBeNull();
    expect(await memory.getTranscript("t", { after_seq: 12 })).toEqual({
      session_id: "t",
      messages: [],
      next_after_seq: null,
    });
    // Another tenant's session of the same id is not this one.
    expect((await memory.forTenant(uniqueName("other")).getTranscript("t")).messages).toEqual([]);
  });

  it("refuses bad options, naming the field", async () => {
    for (const [options, field] of [
      [{ limit: 0 }, "limit"],
      [{ limit: 1001 }, "limit"],
      [{ after_seq: -1 }, "after_seq"],
      [{ after_seq: 1.5 }, "after_seq"],
    ] as const) {
      const error = await memory.getTranscript("t", options).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe(field);
    }
  });
}

inEveryDatabase("getTranscript", servers, transcriptSuite);

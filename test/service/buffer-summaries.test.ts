import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeWithRedis, useTestServers } from "../support/servers.js";
import { call, DEPLOYMENTS, expectErrorShape, openTestService, type TestService } from "./harness.js";

// The BufferStore and SummaryStore routes (GET / DELETE .../buffer, POST / DELETE .../summaries),
// in both deployments: Redis + PostgreSQL, and PostgreSQL alone.

const servers = useTestServers();

interface Buffer {
  session_id: string;
  messages: { seq: number; content: string }[];
  buffer_info: { message_count: number; last_seq: number; first_seq: number; total_tokens: number };
}
interface Context {
  current_summary: string | null;
  message_count: number;
  buffer_messages: { seq: number }[];
  summary: { version: number; first_seq: number; last_seq: number } | null;
}
interface History {
  summaries: { version: number; summary_text: string; last_seq: number; metadata: Record<string, unknown> }[];
}

for (const deployment of DEPLOYMENTS) {
  const suite = deployment.needsRedis ? describeWithRedis : describe;
  suite(`buffer and summary routes (${deployment.name})`, () => {
    let service: TestService;
    const session = (name: string) => `${deployment.needsRedis ? "r" : "p"}-${name}`;
    const url = (id: string, path: string) => `/v1/sessions/${id}/${path}`;
    const get = async <T>(id: string, path: string) =>
      (await call(service.app, "GET", url(id, path))).json<T>();

    async function chat(id: string, turns: number): Promise<void> {
      const messages = Array.from({ length: turns }, (_, turn) => ({
        role: turn % 2 === 0 ? "user" : "assistant",
        content: `Turn ${turn}: a light laptop under 1500 CHF`,
      }));
      const response = await call(service.app, "POST", url(id, "messages"), { body: { messages } });
      expect(response.statusCode).toBe(201);
    }

    beforeAll(async () => {
      service = await openTestService(servers.database, deployment.needsRedis ? servers.redis : undefined);
    });
    afterAll(async () => {
      await service.close();
    });

    it("serves the newest `limit` buffered messages with the buffer's info", async () => {
      const id = session("buffer");
      await chat(id, 5);
      const all = await call(service.app, "GET", url(id, "buffer"));
      expect(all.statusCode).toBe(200);
      const buffer = all.json<Buffer>();
      expect(buffer.session_id).toBe(id);
      expect(buffer.messages.map((message) => message.seq)).toEqual([1, 2, 3, 4, 5]);
      expect(buffer.buffer_info).toMatchObject({ message_count: 5, first_seq: 1, last_seq: 5 });
      const context = await get<Context & { buffer_info: unknown }>(id, "context");
      expect(buffer.buffer_info.total_tokens).toBe(
        (context.buffer_info as Buffer["buffer_info"]).total_tokens,
      );

      const newest = await get<Buffer>(id, "buffer?limit=2");
      expect(newest.messages.map((message) => message.seq)).toEqual([4, 5]);
      expect(newest.buffer_info.message_count).toBe(5);
      const infoOnly = await get<Buffer>(id, "buffer?limit=0");
      expect(infoOnly.messages).toEqual([]);
      expect(infoOnly.buffer_info).toMatchObject({ message_count: 5, last_seq: 5 });
    });

    it.each([["limit=-1"], ["limit=10001"], ["limit=two"], ["colour=red"]])(
      "rejects GET buffer?%s with 400",
      async (query) => {
        const id = session("buffer-query");
        await chat(id, 1);
        const response = await call(service.app, "GET", url(id, `buffer?${query}`));
        expect(response.statusCode).toBe(400);
        const answer = response.json();
        expectErrorShape(answer);
        expect(answer.error).toMatchObject({ code: "invalid_input", field: query.split("=")[0] });
      },
    );

    it("empties the buffer (204) and keeps the transcript: seqs go on, the session stays", async () => {
      const id = session("clear-buffer");
      await chat(id, 3);
      const cleared = await call(service.app, "DELETE", url(id, "buffer"));
      expect(cleared.statusCode).toBe(204);
      expect(cleared.body).toBe("");
      const buffer = await get<Buffer>(id, "buffer");
      expect(buffer.messages).toEqual([]);
      expect(buffer.buffer_info).toMatchObject({ message_count: 0, last_seq: 3 });
      expect((await get<Context>(id, "context")).message_count).toBe(0);
      const next = await call(service.app, "POST", url(id, "messages"), {
        body: { role: "user", content: "And now?" },
      });
      expect(next.json()).toEqual({ session_id: id, messages: [{ seq: 4, duplicate: false }] });
      expect((await get<Buffer>(id, "buffer")).messages.map((message) => message.seq)).toEqual([4]);
    });

    it("adds a summary that becomes the current one, over the range already covered (201)", async () => {
      const id = session("add-summary");
      await chat(id, 4);
      const added = await call(service.app, "POST", url(id, "summaries"), {
        body: { summary_text: "The user wants a light laptop.", metadata: { by: "test" } },
      });
      expect(added.statusCode).toBe(201);
      expect(added.json()).toEqual({ session_id: id, added: true });
      const context = await get<Context>(id, "context");
      expect(context.current_summary).toBe("The user wants a light laptop.");
      expect(context.summary).toMatchObject({ version: 1, first_seq: 1, last_seq: 0 });
      // It covers no messages: the buffer keeps all of them.
      expect(context.buffer_messages.map((message) => message.seq)).toEqual([1, 2, 3, 4]);
      const history = await get<History>(id, "summaries");
      expect(history.summaries).toHaveLength(1);
      expect(history.summaries[0]!.metadata).toEqual({ source: "add_summary", by: "test" });

      const again = await call(service.app, "POST", url(id, "summaries"), {
        body: { summary_text: "The user wants a light laptop under 1500 CHF." },
      });
      expect(again.statusCode).toBe(201);
      const versions = (await get<History>(id, "summaries")).summaries.map((entry) => entry.version);
      expect(versions).toEqual([2, 1]);
      expect((await get<Context>(id, "context")).current_summary).toBe(
        "The user wants a light laptop under 1500 CHF.",
      );
    });

    it("a summary added to a new session creates it; erasing the session removes it", async () => {
      const id = session("summary-first");
      const added = await call(service.app, "POST", url(id, "summaries"), {
        body: { summary_text: "Imported: the user compares laptops." },
      });
      expect(added.statusCode).toBe(201);
      for (const path of ["buffer", "stats", "summaries", "config"]) {
        expect((await call(service.app, "GET", url(id, path))).statusCode, path).toBe(200);
      }
      expect((await get<Context>(id, "context")).current_summary).toBe(
        "Imported: the user compares laptops.",
      );
      expect((await call(service.app, "DELETE", `/v1/sessions/${id}`)).statusCode).toBe(204);
      for (const path of ["context", "buffer", "summaries"]) {
        expect((await call(service.app, "GET", url(id, path))).statusCode, path).toBe(404);
      }
    });

    it("deletes every summary version (204); the messages stay", async () => {
      const id = session("clear-summaries");
      await chat(id, 2);
      await call(service.app, "POST", url(id, "summaries"), { body: { summary_text: "Old summary." } });
      const cleared = await call(service.app, "DELETE", url(id, "summaries"));
      expect(cleared.statusCode).toBe(204);
      expect((await get<History>(id, "summaries")).summaries).toEqual([]);
      const context = await get<Context>(id, "context");
      expect(context.current_summary).toBeNull();
      expect(context.message_count).toBe(2);

      // A session that had only a summary has nothing left.
      const only = session("summary-only");
      await call(service.app, "POST", url(only, "summaries"), { body: { summary_text: "Alone." } });
      expect((await call(service.app, "DELETE", url(only, "summaries"))).statusCode).toBe(204);
      expect((await call(service.app, "GET", url(only, "context"))).statusCode).toBe(404);
    });

    it.each([
      ["an empty summary", { summary_text: "" }, "summary_text"],
      ["no summary_text", { metadata: {} }, "summary_text"],
      ["an unknown field", { summary_text: "x", colour: "red" }, "colour"],
      ["metadata that is a string", { summary_text: "x", metadata: "m" }, "metadata"],
    ])("rejects a summary with %s (400) and writes nothing", async (_name, body, field) => {
      const id = session("bad-summary");
      const response = await call(service.app, "POST", url(id, "summaries"), { body });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ error: { code: "invalid_input", field } });
      expect((await call(service.app, "GET", url(id, "summaries"))).statusCode).toBe(404);
    });

    it("answers 404 for a session never written, on each of these routes", async () => {
      const id = session("never");
      expect((await call(service.app, "GET", url(id, "buffer"))).statusCode).toBe(404);
      expect((await call(service.app, "DELETE", url(id, "buffer"))).statusCode).toBe(404);
      expect((await call(service.app, "DELETE", url(id, "summaries"))).statusCode).toBe(404);
    });
  });
}

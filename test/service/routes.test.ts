import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenCounter } from "../../src/tokens/index.js";
import type { ChatMessage } from "../../src/types.js";
import { describeWithRedis, useTestServers } from "../support/servers.js";
import { call, DEPLOYMENTS, expectErrorShape, openTestService, type TestService } from "./harness.js";

// Every route in-process (fastify inject), in both deployments: Redis + PostgreSQL, and
// PostgreSQL alone (the embedded default's path).

const servers = useTestServers();

for (const deployment of DEPLOYMENTS) {
  const suite = deployment.needsRedis ? describeWithRedis : describe;
  suite(`HTTP routes (${deployment.name})`, () => {
    let service: TestService;
    const session = (name: string) => `${deployment.needsRedis ? "r" : "p"}-${name}`;

    beforeAll(async () => {
      service = await openTestService(servers.database, deployment.needsRedis ? servers.redis : undefined);
    });
    afterAll(async () => {
      await service.close();
    });

    it("stores one message and answers with its seq (201)", async () => {
      const response = await call(service.app, "POST", `/v1/sessions/${session("one")}/messages`, {
        body: { role: "user", content: "I want to buy a laptop" },
      });
      expect(response.statusCode).toBe(201);
      expect(response.json()).toEqual({
        session_id: session("one"),
        messages: [{ seq: 1, duplicate: false }],
      });
    });

    it("stores a batch in order, and a retried id once (200 when nothing is new)", async () => {
      const url = `/v1/sessions/${session("batch")}/messages`;
      const batch = await call(service.app, "POST", url, {
        body: {
          messages: [
            { role: "user", content: "Hello", id: "m-1" },
            { role: "assistant", content: "Hi! What are you looking for?", id: "m-2" },
          ],
        },
      });
      expect(batch.statusCode).toBe(201);
      expect(batch.json<{ messages: unknown[] }>().messages).toEqual([
        { seq: 1, duplicate: false },
        { seq: 2, duplicate: false },
      ]);
      const retry = await call(service.app, "POST", url, {
        body: { role: "user", content: "Hello", id: "m-1" },
      });
      expect(retry.statusCode).toBe(200);
      expect(retry.json<{ messages: unknown[] }>().messages).toEqual([{ seq: 1, duplicate: true }]);
    });

    it("returns the context, and with max_tokens a packed message list within the budget", async () => {
      const id = session("context");
      for (const content of ["I need a light laptop", "How light?", "Under 1.5 kg, under 1500 CHF"]) {
        await call(service.app, "POST", `/v1/sessions/${id}/messages`, {
          body: { role: content.endsWith("?") ? "assistant" : "user", content },
        });
      }
      const plain = await call(service.app, "GET", `/v1/sessions/${id}/context`);
      expect(plain.statusCode).toBe(200);
      const context = plain.json<{
        session_id: string;
        message_count: number;
        buffer_messages: { seq: number; content: string }[];
        buffer_info: { source: string; last_seq: number };
        messages?: unknown;
      }>();
      expect(context.session_id).toBe(id);
      expect(context.message_count).toBe(3);
      expect(context.buffer_messages.map((message) => message.seq)).toEqual([1, 2, 3]);
      expect(context.buffer_info.source).toBe(deployment.needsRedis ? "redis" : "database");
      expect(context.messages).toBeUndefined();

      const packed = await call(service.app, "GET", `/v1/sessions/${id}/context?max_tokens=30&model=gpt-4`);
      expect(packed.statusCode).toBe(200);
      const body = packed.json<{ messages: ChatMessage[]; context_tokens: number }>();
      // One copy of the messages in a budgeted answer: `messages`, without `buffer_messages`.
      expect(body).not.toHaveProperty("buffer_messages");
      expect(body.context_tokens).toBeLessThanOrEqual(30);
      expect(body.context_tokens).toBe(new TokenCounter({ model: "gpt-4" }).countBatchTokens(body.messages));
      expect(body.messages.at(-1)?.content).toBe("Under 1.5 kg, under 1500 CHF");
    });

    it("reads and sets the session config", async () => {
      const id = session("config");
      const put = await call(service.app, "PUT", `/v1/sessions/${id}/config`, {
        body: { summary_trigger_tokens: 2500, max_buffer_tokens: 3500 },
      });
      expect(put.statusCode).toBe(200);
      expect(put.json()).toMatchObject({
        summary_trigger_tokens: 2500,
        max_buffer_tokens: 3500,
        max_buffer_messages: 30,
      });
      const get = await call(service.app, "GET", `/v1/sessions/${id}/config`);
      expect(get.statusCode).toBe(200);
      expect(get.json()).toEqual(put.json());
    });

    it("reports stats, and summaries once summarization has run (limit bounds the history)", async () => {
      const id = session("summaries");
      await call(service.app, "PUT", `/v1/sessions/${id}/config`, {
        body: {
          summary_trigger_tokens: 120,
          max_buffer_tokens: 400,
          keep_recent_tokens: 40,
          max_summary_tokens: 80,
        },
      });
      for (let turn = 0; turn < 12; turn++) {
        await call(service.app, "POST", `/v1/sessions/${id}/messages`, {
          body: {
            messages: [
              { role: "user", content: `Turn ${turn}: I compare laptops by weight, battery life and price.` },
              {
                role: "assistant",
                content: `Turn ${turn}: the ThinkPad X1 Carbon weighs 1.12 kg and costs 1399 CHF.`,
              },
            ],
          },
        });
      }
      await service.memory.waitForIdle();

      const stats = await call(service.app, "GET", `/v1/sessions/${id}/stats`);
      expect(stats.statusCode).toBe(200);
      const figures = stats.json<{
        session_id: string;
        buffer: { last_seq: number };
        summary: { summary_count: number };
        redis: { available: boolean };
        session_config: { summary_trigger_tokens: number };
      }>();
      expect(figures.session_id).toBe(id);
      expect(figures.buffer.last_seq).toBe(24);
      expect(figures.summary.summary_count).toBeGreaterThan(0);
      expect(figures.redis.available).toBe(deployment.needsRedis);
      expect(figures.session_config.summary_trigger_tokens).toBe(120);

      const all = await call(service.app, "GET", `/v1/sessions/${id}/summaries`);
      expect(all.statusCode).toBe(200);
      const history = all.json<{ summaries: { version: number; first_seq: number; last_seq: number }[] }>();
      expect(history.summaries.length).toBe(figures.summary.summary_count);
      expect(history.summaries[0]!.version).toBe(history.summaries.length);
      const one = await call(service.app, "GET", `/v1/sessions/${id}/summaries?limit=1`);
      expect(one.json<{ summaries: unknown[] }>().summaries).toHaveLength(1);
    });

    it("saves and loads the SwisperContext", async () => {
      const id = session("swisper");
      const snapshot = { current_state: "search", preferences: { budget: 1500 }, custom_field: [1, 2] };
      const put = await call(service.app, "PUT", `/v1/sessions/${id}/swisper-context`, { body: snapshot });
      expect(put.statusCode).toBe(200);
      expect(put.json()).toEqual({ ...snapshot, session_id: id });
      const get = await call(service.app, "GET", `/v1/sessions/${id}/swisper-context`);
      expect(get.statusCode).toBe(200);
      expect(get.json()).toEqual({ ...snapshot, session_id: id });
    });

    it("erases a session everywhere (204), after which every read is 404", async () => {
      const id = session("erase");
      await call(service.app, "POST", `/v1/sessions/${id}/messages`, {
        body: { role: "user", content: "forget me" },
      });
      await call(service.app, "PUT", `/v1/sessions/${id}/config`, { body: { max_buffer_messages: 10 } });
      await call(service.app, "PUT", `/v1/sessions/${id}/swisper-context`, { body: { current_state: "x" } });
      const erased = await call(service.app, "DELETE", `/v1/sessions/${id}`);
      expect(erased.statusCode).toBe(204);
      expect(erased.body).toBe("");
      for (const path of ["context", "config", "stats", "summaries", "swisper-context"]) {
        const response = await call(service.app, "GET", `/v1/sessions/${id}/${path}`);
        expect(response.statusCode, path).toBe(404);
        expectErrorShape(response.json());
        expect(response.json<{ error: { code: string } }>().error.code).toBe("not_found");
      }
      expect((await call(service.app, "DELETE", `/v1/sessions/${id}`)).statusCode).toBe(404);
    });

    it("answers 404 for a session that was never written", async () => {
      for (const path of ["context", "config", "stats", "summaries", "swisper-context"]) {
        const response = await call(service.app, "GET", `/v1/sessions/${session("never")}/${path}`);
        expect(response.statusCode, path).toBe(404);
      }
      expect((await call(service.app, "DELETE", `/v1/sessions/${session("never")}`)).statusCode).toBe(404);
    });

    it("takes any printable session id, percent-encoded", async () => {
      const id = `${session("user 42")}/chat#1?ä`;
      const url = `/v1/sessions/${encodeURIComponent(id)}`;
      const post = await call(service.app, "POST", `${url}/messages`, {
        body: { role: "user", content: "hi" },
      });
      expect(post.statusCode).toBe(201);
      expect(post.json<{ session_id: string }>().session_id).toBe(id);
      const context = await call(service.app, "GET", `${url}/context`);
      expect(context.json<{ session_id: string }>().session_id).toBe(id);
      const long = encodeURIComponent("x".repeat(257));
      const tooLong = await call(service.app, "GET", `/v1/sessions/${long}/context`);
      expect(tooLong.statusCode).toBe(400);
      expect(tooLong.json<{ error: { field: string } }>().error.field).toBe("session_id");
    });

    it.each([
      ["a bad role", { role: "robot", content: "x" }, "message.role"],
      ["content of a wrong type", { role: "user", content: 42 }, "message.content"],
      ["a missing content", { role: "user" }, "message.content"],
      ["an unknown field", { role: "user", content: "x", colour: "red" }, "message.colour"],
      ["a tool message without tool_call_id", { role: "tool", content: "42" }, "message.tool_call_id"],
      [
        "a bad message in a batch",
        { messages: [{ role: "user", content: "ok" }, { role: "user" }] },
        "messages[1].content",
      ],
      ["an empty batch", { messages: [] }, "messages"],
      ["a negative timestamp", { role: "user", content: "x", timestamp: -1 }, "message.timestamp"],
    ])("rejects %s with 400 naming the field, and stores nothing", async (_name, body, field) => {
      const id = session("invalid");
      const response = await call(service.app, "POST", `/v1/sessions/${id}/messages`, { body });
      expect(response.statusCode).toBe(400);
      const answer = response.json();
      expectErrorShape(answer);
      expect(answer.error).toMatchObject({ code: "invalid_input", field });
      expect(answer.error.message.startsWith(`${field}: `)).toBe(true);
      expect((await call(service.app, "GET", `/v1/sessions/${id}/context`)).statusCode).toBe(404);
    });

    it.each([
      ["context?max_tokens=0", "max_tokens"],
      ["context?max_tokens=ten", "max_tokens"],
      ["context?max_tokens=10000001", "max_tokens"],
      ["context?model=gpt-4o", "max_tokens"],
      ["context?max_tokens=100&model=no-such-model", "model"],
      ["context?colour=red", "colour"],
      ["summaries?limit=0", "limit"],
      ["summaries?limit=101", "limit"],
      ["summaries?limit=1&limit=2", "limit"],
    ])("rejects GET %s with 400 naming %s", async (path, field) => {
      const id = session("query");
      await call(service.app, "POST", `/v1/sessions/${id}/messages`, {
        body: { role: "user", content: "x" },
      });
      const response = await call(service.app, "GET", `/v1/sessions/${id}/${path}`);
      expect(response.statusCode).toBe(400);
      const answer = response.json();
      expectErrorShape(answer);
      expect(answer.error).toMatchObject({ code: "invalid_input", field });
    });

    it.each([
      ["an unknown key", { colour: 1 }, "config.colour"],
      ["a non-integer", { max_buffer_tokens: 1.5 }, "config.max_buffer_tokens"],
      ["a value over its maximum", { max_buffer_messages: 10_001 }, "config.max_buffer_messages"],
      [
        "a trigger at the token cap",
        { summary_trigger_tokens: 4000, max_buffer_tokens: 4000 },
        "config.summary_trigger_tokens",
      ],
    ])("rejects a config with %s (400) and keeps the old one", async (_name, body, field) => {
      const id = session("bad-config");
      const response = await call(service.app, "PUT", `/v1/sessions/${id}/config`, { body });
      expect(response.statusCode).toBe(400);
      expect(response.json<{ error: { field: string } }>().error.field).toBe(field);
    });

    it("rejects a SwisperContext saved under another session id (400)", async () => {
      const response = await call(service.app, "PUT", `/v1/sessions/${session("sc")}/swisper-context`, {
        body: { session_id: "someone-else" },
      });
      expect(response.statusCode).toBe(400);
      expect(response.json<{ error: { field: string } }>().error.field).toBe("context.session_id");
    });

    it("answers malformed bodies with 400 and the wrong media type with 415, in the error shape", async () => {
      const url = `/v1/sessions/${session("raw")}/messages`;
      const broken = await service.app.inject({
        method: "POST",
        url,
        headers: { "content-type": "application/json" },
        payload: '{"role": "user", "content": ',
      });
      expect(broken.statusCode).toBe(400);
      expect(broken.json()).toMatchObject({ error: { code: "invalid_input", field: "body" } });
      const empty = await service.app.inject({
        method: "POST",
        url,
        headers: { "content-type": "application/json" },
        payload: "",
      });
      expect(empty.statusCode).toBe(400);
      expectErrorShape(empty.json());
      const text = await service.app.inject({
        method: "POST",
        url,
        headers: { "content-type": "text/plain" },
        payload: "hello",
      });
      expect(text.statusCode).toBe(415);
      expect(text.json()).toEqual({
        error: { code: "unsupported_media_type", message: "send JSON (Content-Type: application/json)" },
      });
    });

    it("takes GET and DELETE with Content-Type: application/json and no body as having no body", async () => {
      // Before: 400 "body: must not be empty", and the session was not erased.
      const id = session("json-header");
      const headers = { "content-type": "application/json" };
      await call(service.app, "POST", `/v1/sessions/${id}/messages`, {
        body: { role: "user", content: "hi" },
      });
      const read = await service.app.inject({ method: "GET", url: `/v1/sessions/${id}/context`, headers });
      expect(read.statusCode).toBe(200);
      const erased = await service.app.inject({ method: "DELETE", url: `/v1/sessions/${id}`, headers });
      expect(erased.statusCode).toBe(204);
      expect((await call(service.app, "GET", `/v1/sessions/${id}/context`)).statusCode).toBe(404);
    });

    it("answers a path with invalid percent-encoding with 400 in the error shape", async () => {
      const response = await service.app.inject({ method: "GET", url: "/v1/sessions/%E0%A4%A/context" });
      expect(response.statusCode).toBe(400);
      expect(JSON.parse(response.body)).toEqual({
        error: { code: "invalid_input", message: "path: is not valid percent-encoding", field: "path" },
      });
    });

    it("answers an unknown route with 404 in the error shape", async () => {
      const response = await call(service.app, "GET", "/v1/nothing-here");
      expect(response.statusCode).toBe(404);
      expect(response.json()).toEqual({
        error: { code: "not_found", message: "no route GET /v1/nothing-here" },
      });
    });

    it("echoes a caller's request id, and makes one otherwise", async () => {
      const given = await call(service.app, "GET", "/health", {
        headers: { "x-request-id": "trace-abc.123" },
      });
      expect(given.headers["x-request-id"]).toBe("trace-abc.123");
      const made = await call(service.app, "GET", "/health", {
        headers: { "x-request-id": "bad id\twith tab" },
      });
      expect(made.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    });

    it("reports health and readiness", async () => {
      const health = await call(service.app, "GET", "/health");
      expect(health.statusCode).toBe(200);
      const report = health.json<{
        status: string;
        available: boolean;
        components: Record<string, { status: string }>;
        breakers: Record<string, unknown>;
      }>();
      expect(report.status).toBe("up");
      expect(report.available).toBe(true);
      expect(report.components.postgres?.status).toBe("up");
      expect(report.components.redis?.status).toBe(deployment.needsRedis ? "up" : "disabled");
      expect(report.components.summarizer?.status).toBe("up");
      expect(report.breakers).toBeTypeOf("object");
      const ready = await call(service.app, "GET", "/ready");
      expect(ready.statusCode).toBe(200);
      expect(ready.json()).toEqual({ ready: true });
    });
  });
}

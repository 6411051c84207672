import { describe, expect, it } from "vitest";
import { addressOf, assessHealth, errorCode } from "../../src/resilience/index.js";

// The one health model behind /health, /ready and isAvailable.

describe("assessHealth", () => {
  const all = { postgres: "up", redis: "up", summarizer: "up" } as const;

  it("is up when every component is up, and counts Redis that is not configured as fine", () => {
    expect(assessHealth({ breakers: all, outboxDurable: true })).toMatchObject({
      status: "up",
      canAcknowledgeWrites: true,
    });
    const noRedis = assessHealth({ breakers: { postgres: "up", summarizer: "up" }, outboxDurable: false });
    expect(noRedis).toMatchObject({ status: "up", canAcknowledgeWrites: true });
    expect(noRedis.components.redis).toBeUndefined();
  });

  it("acknowledges writes through a durable outbox while PostgreSQL is down: degraded, not down", () => {
    const verdict = assessHealth({ breakers: { ...all, postgres: "down" }, outboxDurable: true });
    expect(verdict).toMatchObject({ status: "degraded", canAcknowledgeWrites: true });
  });

  it("is down when PostgreSQL is down and the outbox is not durable, or Redis is down too", () => {
    for (const breakers of [
      { ...all, postgres: "down" as const },
      // HALF_OPEN: only the trial call reaches PostgreSQL; the others would need the outbox.
      { ...all, postgres: "degraded" as const },
    ]) {
      expect(assessHealth({ breakers, outboxDurable: false })).toMatchObject({
        status: "down",
        canAcknowledgeWrites: false,
      });
    }
    const both = assessHealth({ breakers: { ...all, postgres: "down", redis: "down" }, outboxDurable: true });
    expect(both.status).toBe("down");
    const noRedis = assessHealth({ breakers: { postgres: "down", summarizer: "up" }, outboxDurable: true });
    expect(noRedis.status).toBe("down");
  });

  it("a failing summarizer or Redis leaves writes acknowledged: degraded", () => {
    expect(assessHealth({ breakers: { ...all, summarizer: "down" }, outboxDurable: true }).status).toBe(
      "degraded",
    );
    expect(assessHealth({ breakers: { ...all, redis: "down" }, outboxDurable: false }).status).toBe(
      "degraded",
    );
  });

  it("an observation lowers up to degraded, never to down, and never raises", () => {
    const verdict = assessHealth({
      breakers: { ...all, redis: "down" },
      outboxDurable: true,
      observed: { postgres: "down", redis: "up", summarizer: "degraded" },
    });
    expect(verdict.components).toEqual({ postgres: "degraded", redis: "down", summarizer: "degraded" });
    // The breaker, not one failed probe, decides whether writes are acknowledged.
    expect(verdict).toMatchObject({ status: "degraded", canAcknowledgeWrites: true });
  });
});

describe("addressOf and errorCode", () => {
  it("gives host:port and never the user or the password", () => {
    expect(addressOf("postgres://memory:hunter2@db.internal/memory", 5432)).toBe("db.internal:5432");
    expect(addressOf("redis://:hunter2@127.0.0.1:6380/0", 6379)).toBe("127.0.0.1:6380");
    expect(addressOf("not a url", 5432)).toBeNull();
  });

  it("names an error by its code, its cause's, an AggregateError's first, else its class", () => {
    expect(errorCode(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }))).toBe("ECONNREFUSED");
    expect(errorCode(new Error("wrapped", { cause: Object.assign(new Error("x"), { code: "57P01" }) }))).toBe(
      "57P01",
    );
    expect(errorCode(new AggregateError([Object.assign(new Error("x"), { code: "ENOTFOUND" })]))).toBe(
      "ENOTFOUND",
    );
    expect(errorCode(new Error("timeout exceeded when trying to connect"))).toBe("ETIMEDOUT");
    expect(errorCode(new Error("Connection terminated unexpectedly"))).toBe("ECONNRESET");
    class ClientOfflineError extends Error {}
    expect(errorCode(new ClientOfflineError("The client is offline"))).toBe("ClientOfflineError");
    expect(errorCode("a string")).toBe("unknown");
  });
});

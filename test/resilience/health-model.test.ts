import { describe, expect, it } from "vitest";
import {
  addressOf,
  assessHealth,
  CircuitBreaker,
  errorCode,
  HealthModel,
} from "../../src/resilience/index.js";

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

describe("HealthModel", () => {
  function model(options: { redis: boolean; outboxDurable: boolean }) {
    let now = Date.UTC(2025, 0, 1);
    const clock = {
      now: () => now,
      advance: (ms: number) => {
        now += ms;
      },
    };
    const breaker = (name: string) =>
      new CircuitBreaker({ name, failureThreshold: 1, recoveryTimeoutMs: 1000, now: clock.now });
    const breakers = {
      postgres: breaker("postgres"),
      summarizer: breaker("summarizer"),
      redis: breaker("redis"),
    };
    const health = new HealthModel({
      components: options.redis ? ["redis", "postgres", "summarizer"] : ["postgres", "summarizer"],
      outboxDurable: () => options.outboxDurable,
    });
    health.monitor.attachBreaker(breakers.postgres);
    health.monitor.attachBreaker(breakers.summarizer);
    if (options.redis) health.monitor.attachBreaker(breakers.redis);
    return { health, breakers, clock };
  }

  it("gives the breakers of the components in use only", () => {
    const withoutRedis = model({ redis: false, outboxDurable: false }).health;
    expect(withoutRedis.breakerSnapshots().map((snapshot) => snapshot.name)).toEqual([
      "postgres",
      "summarizer",
    ]);
    expect(Object.keys(withoutRedis.assess().breakers)).toEqual(["postgres", "summarizer"]);
    expect(withoutRedis.assess().components).toEqual({ postgres: "up", summarizer: "up" });
    const withRedis = model({ redis: true, outboxDurable: false }).health;
    expect(withRedis.breakerSnapshots().map((snapshot) => snapshot.name)).toEqual([
      "redis",
      "postgres",
      "summarizer",
    ]);
  });

  it("the monitor's status and assess agree through an outage", async () => {
    for (const outboxDurable of [true, false]) {
      const { health, breakers, clock } = model({ redis: true, outboxDurable });
      await breakers.postgres.execute(() => Promise.reject(new Error("ECONNREFUSED"))).catch(() => {});
      const verdict = health.assess();
      expect(verdict).toMatchObject({
        status: outboxDurable ? "degraded" : "down",
        canAcknowledgeWrites: outboxDurable,
      });
      expect(verdict.breakers.postgres?.state).toBe("open");
      expect(health.monitor.snapshot().status).toBe(verdict.status);
      // The recovery time passes with no call: the breaker reads half-open, and so does the model.
      clock.advance(1000);
      const later = health.assess();
      expect(later.breakers.postgres?.state).toBe("half_open");
      expect(later.components.postgres).toBe("degraded");
      expect(health.monitor.snapshot().status).toBe(later.status);
    }
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

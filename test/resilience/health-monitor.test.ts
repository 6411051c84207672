import { describe, expect, it, vi } from "vitest";
import {
  CircuitBreaker,
  type ComponentChangeEvent,
  canServeUnlessAllDown,
  HealthMonitor,
  type OverallChangeEvent,
} from "../../src/resilience/index.js";

function manualClock(start = Date.UTC(2025, 0, 1)) {
  let now = start;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

function setup() {
  const clock = manualClock();
  const monitor = new HealthMonitor({
    components: ["summarizer"],
    canServe: canServeUnlessAllDown("redis", "postgres"),
    now: clock.now,
  });
  const redis = new CircuitBreaker({
    name: "redis",
    failureThreshold: 2,
    recoveryTimeoutMs: 1_000,
    now: clock.now,
  });
  const postgres = new CircuitBreaker({
    name: "postgres",
    failureThreshold: 1,
    recoveryTimeoutMs: 1_000,
    now: clock.now,
  });
  monitor.attachBreaker(redis);
  monitor.attachBreaker(postgres);
  return { clock, monitor, redis, postgres };
}

async function trip(breaker: CircuitBreaker, message = "ECONNREFUSED", times = 2): Promise<void> {
  for (let i = 0; i < times; i++) {
    await breaker.execute(() => Promise.reject(new Error(message))).catch(() => undefined);
  }
}

describe("HealthMonitor", () => {
  it("starts up, with every registered component up", () => {
    const { monitor, clock } = setup();
    const snapshot = monitor.snapshot();
    expect(snapshot.status).toBe("up");
    expect(Object.keys(snapshot.components).sort()).toEqual(["postgres", "redis", "summarizer"]);
    expect(snapshot.components.summarizer).toEqual({
      status: "up",
      last_error: null,
      last_error_at: null,
      last_transition_at: iso(clock.now()),
    });
    expect(snapshot.components.redis?.breaker).toMatchObject({ name: "redis", state: "closed" });
    expect(monitor.isAvailable()).toBe(true);
  });

  it("maps breaker transitions to component status: OPEN down, HALF_OPEN degraded, CLOSED up", async () => {
    const { monitor, redis, clock } = setup();
    const changes: ComponentChangeEvent[] = [];
    monitor.onChange((event) => changes.push(event));

    await trip(redis);
    expect(monitor.snapshot().components.redis?.status).toBe("down");

    clock.advance(1_000);
    // Past its recovery timeout the breaker reads HALF_OPEN before any call makes the transition.
    expect(monitor.snapshot().components.redis?.status).toBe("degraded");
    expect(monitor.statuses().redis).toBe("degraded");
    expect(changes).toHaveLength(1);

    await redis.execute(() => Promise.resolve("PONG"));
    expect(monitor.snapshot().components.redis?.status).toBe("up");

    expect(changes.map((c) => [c.component, c.from, c.to])).toEqual([
      ["redis", "up", "down"],
      ["redis", "down", "degraded"],
      ["redis", "degraded", "up"],
    ]);
    expect((changes[0]!.error as Error).message).toBe("ECONNREFUSED");
  });

  it("records the last error and the transition time", async () => {
    const { monitor, redis, clock } = setup();
    const start = clock.now();
    clock.advance(100);
    await trip(redis, "first", 1); // counted, breaker still closed
    let component = monitor.snapshot().components.redis!;
    expect(component).toMatchObject({
      status: "up",
      last_error: "first",
      last_error_at: iso(start + 100),
      last_transition_at: iso(start),
    });

    clock.advance(100);
    await trip(redis, "second", 1); // opens
    component = monitor.snapshot().components.redis!;
    expect(component).toMatchObject({
      status: "down",
      last_error: "second",
      last_error_at: iso(start + 200),
      last_transition_at: iso(start + 200),
    });
    expect(component.breaker).toMatchObject({ state: "open", last_error: "second", total_failures: 2 });

    // Recovery keeps the last error as history.
    redis.reset();
    component = monitor.snapshot().components.redis!;
    expect(component).toMatchObject({ status: "up", last_error: "second" });
  });

  it("is degraded while one tier is down and down when both are (canServe rule)", async () => {
    const { monitor, redis, postgres } = setup();
    const overall: OverallChangeEvent[] = [];
    monitor.on("overall", (event) => overall.push(event));

    await trip(redis);
    expect(monitor.snapshot().status).toBe("degraded");
    expect(monitor.isAvailable()).toBe(true);

    await trip(postgres, "connection terminated", 1);
    expect(monitor.snapshot().status).toBe("down");
    expect(monitor.isAvailable()).toBe(false);

    postgres.reset();
    expect(monitor.snapshot().status).toBe("degraded");
    redis.reset();
    expect(monitor.snapshot().status).toBe("up");

    expect(overall.map((e) => [e.from, e.to])).toEqual([
      ["up", "degraded"],
      ["degraded", "down"],
      ["down", "degraded"],
      ["degraded", "up"],
    ]);
  });

  it("a summarizer outage degrades but does not take the service down", () => {
    const { monitor } = setup();
    monitor.report("summarizer", "down", new Error("model endpoint 503"));
    const snapshot = monitor.snapshot();
    expect(snapshot.status).toBe("degraded");
    expect(snapshot.components.summarizer).toMatchObject({
      status: "down",
      last_error: "model endpoint 503",
    });
    expect(monitor.isAvailable()).toBe(true);
  });

  it("by default cannot serve when any component is down", () => {
    const monitor = new HealthMonitor({ components: ["a", "b"] });
    expect(monitor.snapshot().status).toBe("up");
    monitor.report("a", "degraded");
    expect(monitor.snapshot().status).toBe("degraded");
    expect(monitor.isAvailable()).toBe(true);
    monitor.report("b", "down");
    expect(monitor.snapshot().status).toBe("down");
    expect(monitor.isAvailable()).toBe(false);
  });

  it("report() registers unknown components and records an error without a status change", () => {
    const clock = manualClock();
    const monitor = new HealthMonitor({ now: clock.now });
    const listener = vi.fn();
    monitor.onChange(listener);

    monitor.report("redis", "up");
    expect(listener).not.toHaveBeenCalled();
    clock.advance(50);
    monitor.report("redis", "up", "slow reply");
    expect(listener).not.toHaveBeenCalled();
    expect(monitor.snapshot().components.redis).toMatchObject({
      status: "up",
      last_error: "slow reply",
      last_error_at: iso(clock.now()),
      last_transition_at: iso(clock.now() - 50),
    });
    expect(monitor.register("redis")).toBe(false);
    expect(monitor.register("postgres", "down")).toBe(true);
    expect(monitor.snapshot().components.postgres?.status).toBe("down");
  });

  it("canServeUnlessAllDown treats unregistered components as down", () => {
    const rule = canServeUnlessAllDown("redis", "postgres");
    expect(rule({})).toBe(false);
    expect(rule({ redis: "down" })).toBe(false);
    expect(rule({ redis: "down", postgres: "degraded" })).toBe(true);
    expect(rule({ summarizer: "up" })).toBe(false);
  });

  it("attaching a breaker syncs with its current state; detach stops the updates", async () => {
    const clock = manualClock();
    const monitor = new HealthMonitor({ components: ["redis"], now: clock.now });
    const breaker = new CircuitBreaker({ name: "redis", failureThreshold: 1, now: clock.now });
    await trip(breaker, "ECONNREFUSED", 1);
    const detach = monitor.attachBreaker(breaker);
    expect(monitor.snapshot().components.redis?.status).toBe("down");

    detach();
    breaker.reset();
    const component = monitor.snapshot().components.redis!;
    expect(component.status).toBe("down");
    expect(component.breaker).toBeUndefined();
  });

  it("a component has one breaker: attaching another replaces the first", async () => {
    const clock = manualClock();
    const monitor = new HealthMonitor({ now: clock.now });
    const oldBreaker = new CircuitBreaker({ name: "old", failureThreshold: 1, now: clock.now });
    const newBreaker = new CircuitBreaker({ name: "new", failureThreshold: 1, now: clock.now });
    monitor.attachBreaker(oldBreaker, "redis");
    monitor.attachBreaker(newBreaker, "redis");
    await trip(oldBreaker, "ECONNREFUSED", 1);
    expect(monitor.snapshot().components.redis).toMatchObject({ status: "up", breaker: { name: "new" } });
    await trip(newBreaker, "ECONNREFUSED", 1);
    expect(monitor.snapshot().components.redis?.status).toBe("down");
  });
});

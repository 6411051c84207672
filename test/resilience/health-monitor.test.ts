import { describe, expect, it } from "vitest";
import { CircuitBreaker, HealthMonitor } from "../../src/resilience/index.js";

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
    // The memory manager's rule has this shape: one of the two tiers must be there.
    canServe: (statuses) => statuses.redis !== "down" || statuses.postgres !== "down",
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
    expect(monitor.statuses()).toEqual({ summarizer: "up", redis: "up", postgres: "up" });
  });

  it("reads each breaker's state: OPEN down, HALF_OPEN degraded, CLOSED up", async () => {
    const { monitor, redis, clock } = setup();
    const start = clock.now();
    const redisNow = () => monitor.snapshot().components.redis!;

    await trip(redis);
    expect(redisNow()).toMatchObject({ status: "down", last_transition_at: iso(start) });

    clock.advance(1_000);
    // Past its recovery timeout the breaker reads HALF_OPEN before any call makes the transition.
    expect(redisNow().status).toBe("degraded");
    expect(monitor.statuses().redis).toBe("degraded");

    clock.advance(10);
    await redis.execute(() => Promise.resolve("PONG"));
    expect(redisNow()).toMatchObject({ status: "up", last_transition_at: iso(start + 1_010) });
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

    await trip(redis);
    expect(monitor.snapshot().status).toBe("degraded");

    await trip(postgres, "connection terminated", 1);
    expect(monitor.snapshot().status).toBe("down");

    postgres.reset();
    expect(monitor.snapshot().status).toBe("degraded");
    redis.reset();
    expect(monitor.snapshot().status).toBe("up");
  });

  it("a summarizer outage degrades but does not take the service down", async () => {
    const { monitor, clock } = setup();
    const summarizer = new CircuitBreaker({ name: "summarizer", failureThreshold: 1, now: clock.now });
    monitor.attachBreaker(summarizer);
    await trip(summarizer, "model endpoint 503", 1);
    const snapshot = monitor.snapshot();
    expect(snapshot.status).toBe("degraded");
    expect(snapshot.components.summarizer).toMatchObject({
      status: "down",
      last_error: "model endpoint 503",
    });
  });

  it("by default cannot serve when any component is down", async () => {
    const clock = manualClock();
    const monitor = new HealthMonitor({ now: clock.now });
    const a = new CircuitBreaker({
      name: "a",
      failureThreshold: 1,
      recoveryTimeoutMs: 1_000,
      now: clock.now,
    });
    const b = new CircuitBreaker({ name: "b", failureThreshold: 1, now: clock.now });
    monitor.attachBreaker(a);
    monitor.attachBreaker(b);
    expect(monitor.snapshot().status).toBe("up");
    await trip(a, "down", 1);
    clock.advance(1_000);
    expect(monitor.snapshot().status).toBe("degraded");
    await trip(b, "down", 1);
    expect(monitor.snapshot().status).toBe("down");
  });

  it("attaching a breaker that is already open reports its component down from then", async () => {
    const clock = manualClock();
    const monitor = new HealthMonitor({ components: ["redis"], now: clock.now });
    const breaker = new CircuitBreaker({ name: "redis", failureThreshold: 1, now: clock.now });
    await trip(breaker, "ECONNREFUSED", 1);
    clock.advance(50);
    monitor.attachBreaker(breaker);
    expect(monitor.snapshot().components.redis).toMatchObject({
      status: "down",
      last_transition_at: iso(clock.now()),
    });
  });

  it("a component has one breaker", () => {
    const monitor = new HealthMonitor();
    monitor.attachBreaker(new CircuitBreaker({ name: "old" }), "redis");
    expect(() => monitor.attachBreaker(new CircuitBreaker({ name: "new" }), "redis")).toThrow(
      'health component "redis" already has a breaker',
    );
    expect(monitor.snapshot().components.redis?.breaker?.name).toBe("old");
  });
});

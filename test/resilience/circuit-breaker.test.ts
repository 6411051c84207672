import { afterEach, describe, expect, it, vi } from "vitest";
import { MemoryError, ValidationError } from "../../src/errors.js";
import type { Logger } from "../../src/logger.js";
import {
  CircuitBreaker,
  type CircuitBreakerOptions,
  CircuitOpenError,
  CircuitState,
  isCircuitOpenError,
  type StateChangeEvent,
} from "../../src/resilience/index.js";

/** A clock the test moves by hand, so no test sleeps. */
function manualClock(start = Date.UTC(2025, 0, 1)) {
  let now = start;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const boom = () => Promise.reject(new Error("ECONNREFUSED"));
const ok = <T>(value: T) => Promise.resolve(value);

function makeBreaker(overrides: Partial<CircuitBreakerOptions> = {}) {
  const clock = manualClock();
  const breaker = new CircuitBreaker({
    name: "redis",
    failureThreshold: 3,
    recoveryTimeoutMs: 10_000,
    now: clock.now,
    ...overrides,
  });
  const transitions: StateChangeEvent[] = [];
  breaker.onStateChange((event) => transitions.push(event));
  return { breaker, clock, transitions };
}

async function fail(breaker: CircuitBreaker, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    await expect(breaker.execute(boom)).rejects.toThrow("ECONNREFUSED");
  }
}

/** A promise the test settles by hand, to keep a call in flight. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe("CircuitBreaker", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("exposes the states as values", () => {
    expect(CircuitState).toEqual({ CLOSED: "closed", OPEN: "open", HALF_OPEN: "half_open" });
    expect(new CircuitBreaker({ name: "x" }).getState()).toBe(CircuitState.CLOSED);
  });

  it("passes results and errors through while CLOSED", async () => {
    const { breaker } = makeBreaker();
    await expect(breaker.execute(() => ok(42))).resolves.toBe(42);
    const error = new Error("one");
    await expect(breaker.execute(() => Promise.reject(error))).rejects.toBe(error);
    expect(breaker.getState()).toBe(CircuitState.CLOSED);
  });

  it("counts a synchronous throw from the operation as a failure", async () => {
    const { breaker } = makeBreaker({ failureThreshold: 1 });
    await expect(
      breaker.execute(() => {
        throw new Error("sync");
      }),
    ).rejects.toThrow("sync");
    expect(breaker.getState()).toBe(CircuitState.OPEN);
  });

  it("opens when the threshold of consecutive failures is reached, not before", async () => {
    const { breaker, transitions } = makeBreaker();
    await fail(breaker, 2);
    expect(breaker.getState()).toBe(CircuitState.CLOSED);
    expect(transitions).toEqual([]);
    await fail(breaker, 1);
    expect(breaker.getState()).toBe(CircuitState.OPEN);
    expect(transitions).toHaveLength(1);
    expect(transitions[0]).toMatchObject({ name: "redis", from: "closed", to: "open", reason: "failures" });
    expect((transitions[0]!.error as Error).message).toBe("ECONNREFUSED");
  });

  it("uses 5 consecutive failures and 60 s by default", async () => {
    const clock = manualClock();
    const breaker = new CircuitBreaker({ name: "redis", now: clock.now });
    await fail(breaker, 4);
    expect(breaker.getState()).toBe(CircuitState.CLOSED);
    await fail(breaker, 1);
    expect(breaker.getState()).toBe(CircuitState.OPEN);
    clock.advance(59_999);
    expect(breaker.getState()).toBe(CircuitState.OPEN);
    clock.advance(1);
    expect(breaker.getState()).toBe(CircuitState.HALF_OPEN);
  });

  it("resets the consecutive count on a success", async () => {
    const { breaker } = makeBreaker();
    await fail(breaker, 2);
    await breaker.execute(() => ok("fine"));
    expect(breaker.snapshot().failures).toBe(0);
    await fail(breaker, 2);
    expect(breaker.getState()).toBe(CircuitState.CLOSED);
    await fail(breaker, 1);
    expect(breaker.getState()).toBe(CircuitState.OPEN);
  });

  it("rejects calls while OPEN without invoking the operation", async () => {
    const { breaker, clock } = makeBreaker();
    await fail(breaker, 3);
    clock.advance(4_000);
    const operation = vi.fn(() => ok("never"));

    const error = await breaker.execute(operation).catch((e: unknown) => e);

    expect(operation).not.toHaveBeenCalled();
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(error).toBeInstanceOf(MemoryError);
    expect(isCircuitOpenError(error)).toBe(true);
    const open = error as CircuitOpenError;
    expect(open.code).toBe("circuit_open");
    expect(open.breakerName).toBe("redis");
    expect(open.state).toBe(CircuitState.OPEN);
    expect(open.retryAfterMs).toBe(6_000);
    expect(open.name).toBe("CircuitOpenError");
    expect(breaker.snapshot().rejections).toBe(1);
  });

  it("admits one HALF_OPEN trial after the recovery timeout; its success closes the breaker", async () => {
    const { breaker, clock, transitions } = makeBreaker();
    await fail(breaker, 3);
    clock.advance(9_999);
    await expect(breaker.execute(() => ok("early"))).rejects.toBeInstanceOf(CircuitOpenError);

    clock.advance(1);
    const operation = vi.fn(() => ok("back"));
    await expect(breaker.execute(operation)).resolves.toBe("back");

    expect(operation).toHaveBeenCalledOnce();
    expect(breaker.getState()).toBe(CircuitState.CLOSED);
    expect(transitions.map((t) => [t.from, t.to, t.reason])).toEqual([
      ["closed", "open", "failures"],
      ["open", "half_open", "recovery_timeout"],
      ["half_open", "closed", "trial_success"],
    ]);
    // Closed with a clean slate: it takes the full threshold again to open.
    expect(breaker.snapshot().failures).toBe(0);
    await fail(breaker, 2);
    expect(breaker.getState()).toBe(CircuitState.CLOSED);
  });

  it("getState() and snapshot() only read: the half-open transition is made by the call it admits", async () => {
    const { breaker, clock, transitions } = makeBreaker();
    await fail(breaker, 3);
    clock.advance(10_000);

    expect(breaker.getState()).toBe(CircuitState.HALF_OPEN);
    expect(breaker.snapshot()).toMatchObject({ state: "half_open", retry_after_ms: 0 });
    expect(transitions.map((t) => t.to)).toEqual(["open"]);

    clock.advance(500);
    await breaker.execute(() => ok("trial"));
    expect(transitions.map((t) => [t.to, t.reason, t.at - clock.now()])).toEqual([
      ["open", "failures", -10_500],
      ["half_open", "recovery_timeout", 0],
      ["closed", "trial_success", 0],
    ]);
  });

  it("probeSucceeded() half-opens an OPEN breaker before its timeout; the next call is the trial", async () => {
    const { breaker, clock, transitions } = makeBreaker();
    breaker.probeSucceeded(); // CLOSED: nothing to do
    await fail(breaker, 3);
    clock.advance(1_000);

    breaker.probeSucceeded();
    expect(breaker.getState()).toBe(CircuitState.HALF_OPEN);
    expect(transitions.at(-1)).toMatchObject({ from: "open", to: "half_open", reason: "probe_success" });
    await expect(breaker.execute(() => ok("PONG"))).resolves.toBe("PONG");
    expect(breaker.getState()).toBe(CircuitState.CLOSED);
    expect(transitions).toHaveLength(3);
  });

  it("re-opens on a failed trial, with a fresh recovery timer", async () => {
    const { breaker, clock, transitions } = makeBreaker();
    await fail(breaker, 3);
    const firstOpenedAt = clock.now();
    clock.advance(10_000);
    await fail(breaker, 1);

    expect(breaker.getState()).toBe(CircuitState.OPEN);
    expect(transitions.at(-1)).toMatchObject({ from: "half_open", to: "open", reason: "trial_failure" });
    const snapshot = breaker.snapshot();
    expect(snapshot.opened_at).toBe(new Date(firstOpenedAt + 10_000).toISOString());
    expect(snapshot.retry_after_ms).toBe(10_000);

    // The old timer (from the first opening) no longer applies: 9.999 s later it is still open.
    clock.advance(9_999);
    const operation = vi.fn(() => ok("x"));
    await expect(breaker.execute(operation)).rejects.toMatchObject({ retryAfterMs: 1 });
    expect(operation).not.toHaveBeenCalled();
    clock.advance(1);
    expect(breaker.getState()).toBe(CircuitState.HALF_OPEN);
  });

  it("rejects concurrent calls while the trial is in flight", async () => {
    const { breaker, clock } = makeBreaker();
    await fail(breaker, 3);
    clock.advance(10_000);

    const trial = deferred<string>();
    const trialCall = breaker.execute(() => trial.promise);
    const other = vi.fn(() => ok("other"));
    const refused = await breaker.execute(other).catch((e: unknown) => e);

    expect(other).not.toHaveBeenCalled();
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect(refused).toMatchObject({ state: CircuitState.HALF_OPEN, retryAfterMs: 0 });
    expect(breaker.getState()).toBe(CircuitState.HALF_OPEN);

    trial.resolve("ok");
    await expect(trialCall).resolves.toBe("ok");
    expect(breaker.getState()).toBe(CircuitState.CLOSED);
    await expect(breaker.execute(other)).resolves.toBe("other");
  });

  it("a call admitted before the breaker opened cannot close it by succeeding late", async () => {
    const { breaker, clock } = makeBreaker({ failureThreshold: 1 });
    const slow = deferred<string>();
    const slowCall = breaker.execute(() => slow.promise);
    await fail(breaker, 1);
    clock.advance(10_000);
    const trial = deferred<string>();
    const trialCall = breaker.execute(() => trial.promise);

    slow.resolve("late");
    await expect(slowCall).resolves.toBe("late");
    expect(breaker.getState()).toBe(CircuitState.HALF_OPEN);
    trial.reject(new Error("still down"));
    await expect(trialCall).rejects.toThrow("still down");
    expect(breaker.getState()).toBe(CircuitState.OPEN);
  });

  it("reset() is a real reset: after it, ONE failure does not re-open a threshold-5 breaker", async () => {
    // opossum's close() and cockatiel's manual close keep the failure count, so one failure
    // re-opens them; this is the regression test for that bug.
    const { breaker, transitions } = makeBreaker({ failureThreshold: 5 });
    await fail(breaker, 5);
    expect(breaker.getState()).toBe(CircuitState.OPEN);

    breaker.reset();
    expect(breaker.getState()).toBe(CircuitState.CLOSED);
    expect(breaker.snapshot().failures).toBe(0);
    expect(transitions.at(-1)).toMatchObject({ from: "open", to: "closed", reason: "reset" });

    await fail(breaker, 1);
    expect(breaker.getState()).toBe(CircuitState.CLOSED);
    await fail(breaker, 3);
    expect(breaker.getState()).toBe(CircuitState.CLOSED);
    await fail(breaker, 1);
    expect(breaker.getState()).toBe(CircuitState.OPEN);
  });

  it("reset() of a CLOSED breaker clears its partial count", async () => {
    const { breaker, transitions } = makeBreaker({ failureThreshold: 5 });
    await fail(breaker, 4);
    breaker.reset();
    await fail(breaker, 4);
    expect(breaker.getState()).toBe(CircuitState.CLOSED);
    expect(transitions).toEqual([]);
  });

  it("reset() forgets calls in flight from before the reset", async () => {
    const { breaker } = makeBreaker({ failureThreshold: 1 });
    const slow = deferred<never>();
    const slowCall = breaker.execute(() => slow.promise);
    breaker.reset();
    slow.reject(new Error("timed out before the reset"));
    await expect(slowCall).rejects.toThrow("timed out");
    expect(breaker.getState()).toBe(CircuitState.CLOSED);
    // Still counted as history.
    expect(breaker.snapshot()).toMatchObject({ total_failures: 1, last_error: "timed out before the reset" });
  });

  it("reset() frees a HALF_OPEN breaker whose trial is stuck in flight", async () => {
    const { breaker, clock } = makeBreaker();
    await fail(breaker, 3);
    clock.advance(10_000);
    const stuck = deferred<string>();
    void breaker.execute(() => stuck.promise);
    await expect(breaker.execute(() => ok("x"))).rejects.toBeInstanceOf(CircuitOpenError);
    breaker.reset();
    await expect(breaker.execute(() => ok("x"))).resolves.toBe("x");
    stuck.resolve("late");
  });

  it("does not count errors that isFailure rejects, and does not reset the count either", async () => {
    const failures = vi.fn();
    const { breaker } = makeBreaker({ isFailure: (error) => !(error instanceof ValidationError) });
    breaker.on("failure", failures);
    await fail(breaker, 2);
    for (let i = 0; i < 10; i++) {
      await expect(
        breaker.execute(() => Promise.reject(new ValidationError("message.role", "bad"))),
      ).rejects.toBeInstanceOf(ValidationError);
    }
    expect(breaker.getState()).toBe(CircuitState.CLOSED);
    expect(breaker.snapshot()).toMatchObject({ failures: 2, total_failures: 2, total_successes: 0 });
    expect(failures).toHaveBeenCalledTimes(2);
    await fail(breaker, 1);
    expect(breaker.getState()).toBe(CircuitState.OPEN);
  });

  it("an uncounted error during the trial frees the slot and stays HALF_OPEN", async () => {
    const { breaker, clock } = makeBreaker({ isFailure: (error) => !(error instanceof ValidationError) });
    await fail(breaker, 3);
    clock.advance(10_000);
    await expect(
      breaker.execute(() => Promise.reject(new ValidationError("x", "bad"))),
    ).rejects.toBeInstanceOf(ValidationError);
    expect(breaker.getState()).toBe(CircuitState.HALF_OPEN);
    await expect(breaker.execute(() => ok("next trial"))).resolves.toBe("next trial");
    expect(breaker.getState()).toBe(CircuitState.CLOSED);
  });

  it("counts the error when isFailure itself throws (no leaked trial slot)", async () => {
    const { breaker } = makeBreaker({
      failureThreshold: 1,
      isFailure: () => {
        throw new Error("predicate bug");
      },
    });
    await fail(breaker, 1);
    expect(breaker.getState()).toBe(CircuitState.OPEN);
  });

  it("emits a failure event for each counted failure only (the health monitor's last error)", async () => {
    const { breaker, clock } = makeBreaker({
      failureThreshold: 1,
      isFailure: (error) => !(error instanceof ValidationError),
    });
    const failures: unknown[] = [];
    breaker.on("failure", (event) => failures.push(event));

    await breaker.execute(() => ok(1));
    await expect(breaker.execute(() => Promise.reject(new ValidationError("x", "bad")))).rejects.toThrow();
    clock.advance(25);
    await fail(breaker, 1);
    await expect(breaker.execute(() => ok(1))).rejects.toBeInstanceOf(CircuitOpenError);

    expect(failures).toEqual([{ name: "redis", at: clock.now(), error: new Error("ECONNREFUSED") }]);
  });

  it("unsubscribes, and isolates a throwing listener from the call", async () => {
    const logger: Logger = { info: vi.fn(), warn: vi.fn(), error: vi.fn() };
    const { breaker } = makeBreaker({ failureThreshold: 2, logger });
    const listener = vi.fn();
    const off = breaker.onStateChange(listener);
    breaker.on("failure", () => {
      throw new Error("metrics bug");
    });

    // The caller sees the operation's own error, not the listener's.
    await fail(breaker, 1);
    expect(logger.error).toHaveBeenCalledOnce();

    off();
    await fail(breaker, 1);
    expect(breaker.getState()).toBe(CircuitState.OPEN);
    expect(listener).not.toHaveBeenCalled();
  });

  it("wrap() returns the guarded function with its arguments", async () => {
    const { breaker } = makeBreaker({ failureThreshold: 1 });
    const get = vi.fn(async (key: string, fallback: number) =>
      key === "bad" ? Promise.reject(new Error("down")) : fallback,
    );
    const guardedGet = breaker.wrap(get);

    await expect(guardedGet("k", 7)).resolves.toBe(7);
    expect(get).toHaveBeenCalledWith("k", 7);
    await expect(guardedGet("bad", 0)).rejects.toThrow("down");
    await expect(guardedGet("k", 7)).rejects.toBeInstanceOf(CircuitOpenError);
    expect(get).toHaveBeenCalledTimes(2);
  });

  it("a call failing after the breaker opened is history: it neither extends the timer nor re-opens", async () => {
    const { breaker, clock, transitions } = makeBreaker({ failureThreshold: 1 });
    const slow = deferred<never>();
    const slowCall = breaker.execute(() => slow.promise);
    await fail(breaker, 1);
    clock.advance(5_000);

    slow.reject(new Error("timed out"));
    await expect(slowCall).rejects.toThrow("timed out");
    expect(breaker.snapshot()).toMatchObject({ state: "open", retry_after_ms: 5_000, total_failures: 2 });
    expect(transitions).toHaveLength(1);
    clock.advance(5_000);
    expect(breaker.getState()).toBe(CircuitState.HALF_OPEN);
  });

  it("snapshot() reports the figures", async () => {
    const { breaker, clock } = makeBreaker();
    const start = clock.now();
    expect(breaker.snapshot()).toEqual({
      name: "redis",
      state: "closed",
      failures: 0,
      opened_at: null,
      retry_after_ms: 0,
      last_error: null,
      last_transition_at: null,
      total_failures: 0,
      total_successes: 0,
      rejections: 0,
    });

    await breaker.execute(() => ok(1));
    await fail(breaker, 3);
    clock.advance(2_500);
    await expect(breaker.execute(() => ok(1))).rejects.toBeInstanceOf(CircuitOpenError);
    await expect(breaker.execute(() => ok(1))).rejects.toBeInstanceOf(CircuitOpenError);

    expect(breaker.snapshot()).toEqual({
      name: "redis",
      state: "open",
      failures: 3,
      opened_at: new Date(start).toISOString(),
      retry_after_ms: 7_500,
      last_error: "ECONNREFUSED",
      last_transition_at: new Date(start).toISOString(),
      total_failures: 3,
      total_successes: 1,
      rejections: 2,
    });

    clock.advance(7_500);
    await breaker.execute(() => ok(1));
    expect(breaker.snapshot()).toMatchObject({
      state: "closed",
      failures: 0,
      opened_at: null,
      last_transition_at: new Date(start + 10_000).toISOString(),
      total_successes: 2,
      last_error: "ECONNREFUSED",
    });
  });

  it("works with vitest fake timers through the default Date.now clock", async () => {
    vi.useFakeTimers();
    const breaker = new CircuitBreaker({ name: "postgres", failureThreshold: 1, recoveryTimeoutMs: 30_000 });
    await fail(breaker, 1);
    vi.advanceTimersByTime(29_999);
    expect(breaker.getState()).toBe(CircuitState.OPEN);
    vi.advanceTimersByTime(1);
    expect(breaker.getState()).toBe(CircuitState.HALF_OPEN);
    // No timers are scheduled: nothing can keep the process alive.
    expect(vi.getTimerCount()).toBe(0);
  });

  it("rejects invalid options", () => {
    expect(() => new CircuitBreaker({ name: "x", failureThreshold: 0 })).toThrow(RangeError);
    expect(() => new CircuitBreaker({ name: "x", failureThreshold: 2.5 })).toThrow(RangeError);
    expect(() => new CircuitBreaker({ name: "x", recoveryTimeoutMs: -1 })).toThrow(RangeError);
  });
});

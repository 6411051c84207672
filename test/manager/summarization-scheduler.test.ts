import { describe, expect, it } from "vitest";
import type { JobOutcome } from "../../src/manager/summarization-job.js";
import { SummarizationScheduler } from "../../src/manager/summarization-scheduler.js";
import { recordingLogger } from "../support/fixtures.js";

// Backpressure: a held write waits for its session's summarization, and no longer than needed.

const ref = { tenant: "default", sessionId: "s1" };

/** A scheduler whose job steps end when the test says so. */
function controllable(holdTimeoutMs = 5000) {
  const steps: { finish(outcome: JobOutcome | Error): void }[] = [];
  const scheduler = new SummarizationScheduler({
    logger: recordingLogger(),
    backoffBaseMs: 10_000,
    holdTimeoutMs,
    runJob: () =>
      new Promise<JobOutcome>((resolve, reject) => {
        steps.push({ finish: (outcome) => (outcome instanceof Error ? reject(outcome) : resolve(outcome)) });
      }),
  });
  return { scheduler, steps };
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe("SummarizationScheduler.hold", () => {
  it("resolves at once when the session has no job", async () => {
    const { scheduler } = controllable();
    await expect(scheduler.hold(ref)).resolves.toBe("not_progressing");
    expect(scheduler.stats().held).toBe(0);
  });

  it("resolves when the session's summarization has caught up, not after the first of several steps", async () => {
    const { scheduler, steps } = controllable();
    scheduler.request(ref);
    let outcome: string | null = null;
    void scheduler.hold(ref).then((value) => {
      outcome = value;
    });
    steps[0]!.finish({ kind: "committed", summary: {} as never, more: true, summarizerMs: 1 });
    await nextTurn();
    expect(outcome).toBeNull();
    steps[1]!.finish({ kind: "nothing" });
    await nextTurn();
    expect(outcome).toBe("caught_up");
    expect(scheduler.stats()).toMatchObject({ held: 1, holdTimeouts: 0 });
    await scheduler.close();
  });

  it("lets the write go as soon as a step fails: holding it longer would not bring the summary", async () => {
    const { scheduler, steps } = controllable();
    scheduler.request(ref);
    const held = scheduler.hold(ref);
    steps[0]!.finish(new Error("model down"));
    await expect(held).resolves.toBe("not_progressing");
    await scheduler.close();
  });

  it("gives up after holdTimeoutMs", async () => {
    const { scheduler, steps } = controllable(20);
    scheduler.request(ref);
    await expect(scheduler.hold(ref)).resolves.toBe("timeout");
    expect(scheduler.stats()).toMatchObject({ held: 1, holdTimeouts: 1 });
    steps[0]!.finish({ kind: "nothing" });
    await scheduler.close();
  });
});

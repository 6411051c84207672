import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultServers, until } from "./support/environment.js";
import {
  checkTranscripts,
  countSummaries,
  coverageProblems,
  differencesFromSystemOfRecord,
  printFigures,
} from "./support/invariants.js";
import { type Acknowledgement, libraryClient, WriteLog } from "./support/traffic.js";

// Regression test (passed before the fix, must keep passing): a process SIGKILLed while its
// summarization jobs run (a slow summarizer call in flight, holding the session's lease); another
// instance then carries on. Every acknowledged write stays, once, in order; summary versions
// cover [1..k] with no gap or overlap; once quiet every context equals the transcript's.

const SESSIONS = 6;
const LEASE_MS = 1500;
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

let servers: FaultServers;

beforeAll(async () => {
  servers = await FaultServers.start();
});

afterAll(async () => {
  await servers?.stop();
});

describe("regression: a process killed mid-summary", () => {
  it("leaves exact summary coverage for the instance that finishes the work", async () => {
    const sessions = Array.from({ length: SESSIONS }, (_, i) => `mid-summary-${i}`);
    const log = new WriteLog("survivor");
    const state = { started: 0, ended: 0, committed: 0 };
    const child: ChildProcess = spawn(
      process.execPath,
      ["--import", "tsx", fileURLToPath(new URL("./support/summarizing-child.ts", import.meta.url))],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          CHILD_DATABASE_URL: servers.postgres.url,
          CHILD_REDIS_URL: servers.redis.url,
          CHILD_KEY_PREFIX: servers.keyPrefix,
          CHILD_SESSIONS: sessions.join(","),
          CHILD_LEASE_MS: String(LEASE_MS),
        },
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    const exited = new Promise((resolve) => child.once("exit", resolve));
    let pending = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) {
        const event = JSON.parse(line) as {
          attempt?: { session: string; id: string };
          ack?: { session: string; id: string; content: string; ack: Acknowledgement };
          summarize?: "start" | "end";
          committed?: number;
        };
        if (event.attempt) log.recordAttempt(event.attempt.session, event.attempt.id);
        if (event.ack) log.recordAck(event.ack.session, event.ack, event.ack.ack);
        if (event.summarize === "start") state.started++;
        if (event.summarize === "end") state.ended++;
        if (event.committed) state.committed = event.committed;
      }
    });
    try {
      await until(
        () => state.committed >= 3 && state.started > state.ended,
        "the child has committed summaries and is in the middle of another",
        45_000,
      );
      child.kill("SIGKILL");
      await exited;
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
    const acknowledgedByChild = log.acknowledged;
    const summariesAtKill = await countSummaries(servers.pool);

    // Another instance carries on: more writes to every session, then it summarizes them all
    // (after the dead process's leases expire).
    const survivor = await servers.openManager();
    const client = libraryClient(survivor);
    for (let round = 0; round < 8; round++) {
      for (const session of sessions)
        expect(await log.write(client, session, log.message(25))).not.toBeNull();
    }
    await survivor.waitForIdle();
    const { figures, examples } = await checkTranscripts(servers.pool, log);
    const coverage: string[] = [];
    for (const session of sessions) {
      const problem = await coverageProblems(survivor, session);
      if (problem) coverage.push(`${session}: ${problem}`);
    }
    const differences = await differencesFromSystemOfRecord(survivor, servers.postgres.url, sessions);
    printFigures(
      "process killed mid-summary",
      {
        ...figures,
        acknowledgedByChild,
        summariesAtKill,
        summariesAfter: await countSummaries(servers.pool),
        coverageProblems: coverage.length,
        quietDifferences: differences.length,
      },
      [...examples, ...coverage, ...differences],
    );
    expect(acknowledgedByChild).toBeGreaterThan(0);
    expect({
      lost: figures.lost,
      duplicated: figures.duplicated,
      outOfOrder: figures.outOfOrder,
      seqMismatch: figures.seqMismatch,
      unexpectedErrors: figures.unexpectedErrors,
    }).toEqual({ lost: 0, duplicated: 0, outOfOrder: 0, seqMismatch: 0, unexpectedErrors: 0 });
    expect(examples).toEqual([]);
    expect(coverage).toEqual([]);
    expect(differences).toEqual([]);
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { FaultServers } from "./support/environment.js";
import {
  checkTranscripts,
  countSummaries,
  coverageProblems,
  differencesFromSystemOfRecord,
  printFigures,
  readTranscript,
} from "./support/invariants.js";
import { type Client, httpClient, startTraffic, WriteLog, type WriteOutcome } from "./support/traffic.js";

// Regression test (passed before the fix, must keep passing): two service instances on the same
// Redis and PostgreSQL, each message sent to both at once with the same id (a client retrying on
// another instance). Each message is stored once, with no gap in the seqs; both answers name the
// same seq, and exactly one says it stored something new.

const SESSIONS = 10;

let servers: FaultServers;

beforeAll(async () => {
  servers = await FaultServers.start();
});

afterAll(async () => {
  await servers?.stop();
});

/** A client that sends each write to two instances at once and reconciles their answers. */
function racingClient(a: Client, b: Client, breaches: string[]): Client {
  return {
    name: `${a.name}+${b.name}`,
    async write(session, message) {
      const [first, second] = await Promise.all([a.write(session, message), b.write(session, message)]);
      const acks = [first, second].filter((outcome) => outcome.kind === "ack");
      const failed = [first, second].find((outcome) => outcome.kind === "unexpected");
      if (failed) return failed;
      if (acks.length === 0) return first;
      if (acks.length === 2) {
        const [x, y] = acks as Extract<WriteOutcome, { kind: "ack" }>[];
        if (x!.ack.seq !== y!.ack.seq)
          breaches.push(`${message.id}: answered seq ${x!.ack.seq} and ${y!.ack.seq}`);
        if (x!.ack.duplicate === y!.ack.duplicate)
          breaches.push(`${message.id}: duplicate ${x!.ack.duplicate} from both instances`);
        return x!.ack.duplicate ? y! : x!;
      }
      return acks[0]!;
    },
    read: (session) => a.read(session),
    erase: (session) => a.erase(session),
  };
}

describe("regression: two instances writing the same sessions with retried ids", () => {
  it("stores each message once, with no gap, whichever instance answers", async () => {
    const one = await servers.openService();
    const two = await servers.openService();
    await servers.warmUp(one.memory);
    const breaches: string[] = [];
    const client = racingClient(httpClient(one.app, "one"), httpClient(two.app, "two"), breaches);
    const log = new WriteLog("twice");
    const sessions = Array.from({ length: SESSIONS }, (_, i) => `twice-${i}`);
    const traffic = startTraffic(client, sessions, log, { writers: SESSIONS, words: 20, maxWrites: 600 });
    await traffic.done;
    const { figures, examples } = await checkTranscripts(servers.pool, log);
    const gaps: string[] = [];
    const coverage: string[] = [];
    const managers: MemoryManager[] = [one.memory, two.memory];
    await Promise.all(managers.map((manager) => manager.waitForIdle()));
    for (const session of sessions) {
      const seqs = (await readTranscript(servers.pool, session)).map((row) => row.seq);
      if (seqs.some((seq, i) => seq !== i + 1)) gaps.push(`${session}: seqs ${seqs.join(",")}`);
      const problem = await coverageProblems(one.memory, session);
      if (problem) coverage.push(`${session}: ${problem}`);
    }
    const differences = [
      ...(await differencesFromSystemOfRecord(one.memory, servers.postgres.url, sessions)),
      ...(await differencesFromSystemOfRecord(two.memory, servers.postgres.url, sessions)),
    ];
    printFigures(
      "two instances with retried ids",
      {
        ...figures,
        answersDisagreeing: breaches.length,
        sessionsWithGaps: gaps.length,
        summaries: await countSummaries(servers.pool),
        coverageProblems: coverage.length,
        quietDifferences: differences.length,
      },
      [...breaches, ...examples, ...gaps, ...coverage, ...differences],
    );
    expect(figures.acknowledged).toBe(600);
    expect({
      lost: figures.lost,
      duplicated: figures.duplicated,
      outOfOrder: figures.outOfOrder,
      seqMismatch: figures.seqMismatch,
      unexpectedErrors: figures.unexpectedErrors,
    }).toEqual({ lost: 0, duplicated: 0, outOfOrder: 0, seqMismatch: 0, unexpectedErrors: 0 });
    expect(breaches).toEqual([]);
    expect(gaps).toEqual([]);
    expect(examples).toEqual([]);
    expect(coverage).toEqual([]);
    expect(differences).toEqual([]);
  });
});

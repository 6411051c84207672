/**
 * The migration from the legacy session store as one object: its phase, the store, the mirror's
 * retry queue, gradual's divergence counts, and the import and verification run as background
 * jobs (what the HTTP service offers besides the CLI). One per `createMemoryManager`; every
 * tenant's manager shares it, and only `tenant`'s sessions are migrated.
 */
import { randomUUID } from "node:crypto";
import { LegacyStoreNotConfiguredError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { MemoryManager } from "../manager/memory-manager.js";
import type { Database } from "../storage/database.js";
import type { ConsistencyCheck, DivergenceLabel } from "./consistency.js";
import { importLegacySessions, type LegacyImportTotals } from "./import.js";
import type { LegacySessionStore } from "./legacy-store.js";
import { type LegacyMirror, type MigrationPhase, type QueueDepth, readQueueDepth } from "./mirror.js";
import { type LegacyVerifyResult, verifyLegacySessions } from "./verify.js";

export interface LegacyMigrationOptions {
  phase: MigrationPhase;
  /** The legacy store; null when none is configured (phase off without LEGACY_DATABASE_URL). */
  store: LegacySessionStore | null;
  /** The memory's system of record (the retry queue, the transcript that verify reads). */
  database: Database;
  /** The memory tenant the legacy table migrates into (it has no tenants of its own). */
  tenant: string;
  /** The IANA zone of the legacy local times. */
  timeZone: string;
  mirror: LegacyMirror | null;
  consistency: ConsistencyCheck | null;
  logger?: Logger;
}

export interface LegacyStatus {
  phase: MigrationPhase;
  tenant: string;
  /** Legacy writes waiting in the retry queue, with the deepest sessions. */
  retryQueue: QueueDepth;
  /** Legacy writes that failed or timed out since the process started. */
  writeFailures: number;
  /** Whether a legacy store is configured and answered, and how many sessions it holds. */
  legacyStore: { configured: boolean; reachable: boolean; sessions: number | null; error: string | null };
  /** Phase gradual's divergences since the process started, by kind; null in other phases. */
  divergences: Record<DivergenceLabel, number> | null;
}

export type LegacyJobKind = "import" | "verify";

/** A background import or verification, as `GET /v1/legacy/jobs/{id}` shows it. */
export interface LegacyJob {
  id: string;
  kind: LegacyJobKind;
  state: "running" | "succeeded" | "failed";
  startedAt: Date;
  finishedAt: Date | null;
  /** Sessions done so far. */
  sessionsDone: number;
  /** The totals (import) or the report (verify), once finished. */
  result: LegacyImportTotals | LegacyVerifyResult | null;
  /** Why it failed. */
  error: string | null;
}

export interface LegacyImportJobOptions {
  sessionId?: string;
  dryRun?: boolean;
  maxSessions?: number;
}

export interface LegacyVerifyJobOptions {
  sessionId?: string;
  sample?: number;
}

/** Finished jobs kept for their callers to read; older ones are forgotten. */
const FINISHED_KEPT = 50;

export class LegacyMigration {
  readonly phase: MigrationPhase;
  readonly tenant: string;
  /** Phases coexistence, gradual and full: the mirror of acknowledged writes; else null. */
  readonly mirror: LegacyMirror | null;
  /** Phase gradual: the sampled comparison of reads; else null. */
  readonly consistency: ConsistencyCheck | null;
  readonly #options: LegacyMigrationOptions;
  readonly #jobs = new Map<string, LegacyJob>();
  readonly #running = new Set<Promise<void>>();

  constructor(options: LegacyMigrationOptions) {
    this.#options = options;
    this.phase = options.phase;
    this.tenant = options.tenant;
    this.mirror = options.mirror;
    this.consistency = options.consistency;
  }

  /** Whether a legacy store is configured (import, verify and status need one). */
  get configured(): boolean {
    return this.#options.store !== null;
  }

  async status(): Promise<LegacyStatus> {
    const { store, database, mirror, consistency } = this.#options;
    const retryQueue = await readQueueDepth(database, 10);
    let legacyStore: LegacyStatus["legacyStore"] = {
      configured: false,
      reachable: false,
      sessions: null,
      error: null,
    };
    if (store) {
      try {
        legacyStore = {
          configured: true,
          reachable: true,
          sessions: await store.countSessions(),
          error: null,
        };
      } catch (error) {
        legacyStore = { configured: true, reachable: false, sessions: null, error: messageOf(error) };
      }
    }
    const counts = consistency?.counts();
    return {
      phase: this.phase,
      tenant: this.tenant,
      retryQueue,
      writeFailures: mirror?.failures ?? 0,
      legacyStore,
      divergences: counts ? (Object.fromEntries(counts) as Record<DivergenceLabel, number>) : null,
    };
  }

  /**
   * Starts importing into `memory` (the migration's tenant) in the background. The import is not
   * mirrored back into the legacy store it reads, whatever the phase.
   */
  startImport(memory: MemoryManager, options: LegacyImportJobOptions): LegacyJob {
    const store = this.#store();
    return this.#start("import", (job) =>
      importLegacySessions({
        legacy: store,
        memory: memory.withoutLegacyMirror(),
        timeZone: this.#options.timeZone,
        // The service imports beside its live traffic, which shares its pool and its append
        // statements: four sessions at once, not the CLI's sixteen.
        concurrency: 4,
        ...options,
        onSession: () => {
          job.sessionsDone += 1;
        },
      }),
    );
  }

  /** Starts comparing the legacy store with `memory` (every session, one, or a sample). */
  startVerify(memory: MemoryManager, options: LegacyVerifyJobOptions): LegacyJob {
    const store = this.#store();
    return this.#start("verify", (job) =>
      verifyLegacySessions({
        legacy: store,
        memory,
        database: this.#options.database,
        timeZone: this.#options.timeZone,
        ...options,
        onSession: () => {
          job.sessionsDone += 1;
        },
      }),
    );
  }

  job(id: string): LegacyJob | undefined {
    return this.#jobs.get(id);
  }

  /** Waits for the jobs in flight (on close: they write through connections about to close). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#running]);
  }

  #store(): LegacySessionStore {
    const { store } = this.#options;
    if (!store) throw new LegacyStoreNotConfiguredError();
    return store;
  }

  #start(kind: LegacyJobKind, work: (job: LegacyJob) => Promise<LegacyJob["result"]>): LegacyJob {
    const job: LegacyJob = {
      id: randomUUID(),
      kind,
      state: "running",
      startedAt: new Date(),
      finishedAt: null,
      sessionsDone: 0,
      result: null,
      error: null,
    };
    this.#jobs.set(job.id, job);
    this.#forgetOldJobs();
    const running = work(job).then(
      (result) => Object.assign(job, { state: "succeeded", result, finishedAt: new Date() }),
      (error: unknown) => {
        Object.assign(job, { state: "failed", error: messageOf(error), finishedAt: new Date() });
        this.#options.logger?.error({ job: job.id, kind, err: messageOf(error) }, "legacy job failed");
      },
    );
    const tracked = running.then(() => undefined);
    this.#running.add(tracked);
    void tracked.finally(() => this.#running.delete(tracked));
    return job;
  }

  #forgetOldJobs(): void {
    const finished = [...this.#jobs.values()].filter((job) => job.state !== "running");
    for (const job of finished.slice(0, Math.max(0, finished.length - FINISHED_KEPT))) {
      this.#jobs.delete(job.id);
    }
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

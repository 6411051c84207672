import type { FastifyRequest } from "fastify";
import type { LegacyImportTotals } from "../../legacy/import.js";
import type { LegacyJob, LegacyMigration, LegacyStatus } from "../../legacy/migration.js";
import type { LegacyVerifyResult } from "../../legacy/verify.js";
import type { MemoryManager } from "../../manager/memory-manager.js";
import { bodyExamples, json } from "../answers.js";
import { HttpError, notFound } from "../http-errors.js";
import {
  LegacyImportBodySchema,
  LegacyJobParamsSchema,
  LegacyJobSchema,
  LegacyStatusSchema,
  LegacyVerifyBodySchema,
} from "../schemas.js";
import type { SessionScope } from "./session-scope.js";

const TAG = "legacy";
const FORBIDDEN = "The key's tenant is not the one the legacy table migrates into (`forbidden`)";
const NOT_CONFIGURED =
  "No legacy store is configured: LEGACY_DATABASE_URL is not set (`legacy_not_configured`)";

/**
 * `/v1/legacy/...`: what `swisper-memory legacy status|import|verify` do, over HTTP. Import and
 * verify run in the background (they may take minutes): each answers 202 with a job to poll.
 * The legacy table has no tenants, so only keys of the tenant it migrates into may use them.
 */
export function legacyRoutes(scope: SessionScope): void {
  statusRoute(scope);
  importRoute(scope);
  verifyRoute(scope);
  jobRoute(scope);
}

function statusRoute(scope: SessionScope): void {
  const { routes, security, errors } = scope;
  routes.get(
    "/legacy",
    {
      schema: {
        operationId: "getLegacyStatus",
        tags: [TAG],
        summary: "The migration's status",
        description:
          "The phase, the legacy writes waiting in the retry queue, whether the legacy store answers, " +
          "and phase gradual's divergences (`swisper-memory legacy status`).",
        security,
        response: { 200: json("The status", LegacyStatusSchema), ...errors([403], { 403: FORBIDDEN }) },
      },
    },
    async (request) => statusBody(await migrationFor(scope, request).migration.status()),
  );
}

function importRoute(scope: SessionScope): void {
  const { routes, security, errors } = scope;
  routes.post(
    "/legacy/imports",
    {
      schema: {
        operationId: "startLegacyImport",
        tags: [TAG],
        summary: "Import the legacy store",
        description:
          "Starts importing every swisper_sessions row (or one) into the transcript, as " +
          "`swisper-memory legacy import` does: idempotent, so a repeated or resumed import stores " +
          "nothing twice. Poll the job for its totals.",
        security,
        body: LegacyImportBodySchema,
        bodyExamples: bodyExamples(LegacyImportBodySchema, {
          everything: { summary: "Every session", value: {} },
          one: { summary: "One session, checked only", value: { session_id: "session_123", dry_run: true } },
        }),
        response: {
          202: json("Started", LegacyJobSchema),
          ...errors([400, 403, 404, 413, 415], { 403: FORBIDDEN, 404: NOT_CONFIGURED }),
        },
      },
    },
    async (request, reply) => {
      const { migration, memory } = migrationFor(scope, request, { needsStore: true });
      const { session_id: sessionId, dry_run: dryRun, max_sessions: maxSessions } = request.body;
      const job = migration.startImport(memory, {
        dryRun,
        ...(sessionId !== undefined ? { sessionId } : {}),
        ...(maxSessions !== undefined ? { maxSessions } : {}),
      });
      return reply.code(202).send(jobBody(job));
    },
  );
}

function verifyRoute(scope: SessionScope): void {
  const { routes, security, errors } = scope;
  routes.post(
    "/legacy/verifications",
    {
      schema: {
        operationId: "startLegacyVerification",
        tags: [TAG],
        summary: "Compare the legacy store with the memory",
        description:
          "Starts comparing every session (or one, or a sample): message count, order and content of " +
          "every message, and the context, as `swisper-memory legacy verify` does. Poll the job for " +
          "its report; `agree` is false when any session diverges.",
        security,
        body: LegacyVerifyBodySchema,
        bodyExamples: bodyExamples(LegacyVerifyBodySchema, {
          sample: { summary: "100 sessions at random", value: { sample: 100 } },
        }),
        response: {
          202: json("Started", LegacyJobSchema),
          ...errors([400, 403, 404, 413, 415], { 403: FORBIDDEN, 404: NOT_CONFIGURED }),
        },
      },
    },
    async (request, reply) => {
      const { migration, memory } = migrationFor(scope, request, { needsStore: true });
      const { session_id: sessionId, sample } = request.body;
      const job = migration.startVerify(memory, {
        ...(sessionId !== undefined ? { sessionId } : {}),
        ...(sample !== undefined ? { sample } : {}),
      });
      return reply.code(202).send(jobBody(job));
    },
  );
}

function jobRoute(scope: SessionScope): void {
  const { routes, security, errors } = scope;
  routes.get(
    "/legacy/jobs/:job_id",
    {
      schema: {
        operationId: "getLegacyJob",
        tags: [TAG],
        summary: "A legacy import or verification",
        description:
          "Its state, the sessions done so far and, once finished, its totals or report. Jobs live in " +
          "the instance that started them, until it restarts (an import started again resumes).",
        security,
        params: LegacyJobParamsSchema,
        response: {
          200: json("The job", LegacyJobSchema),
          ...errors([400, 403, 404], { 403: FORBIDDEN, 404: "No such job on this instance (`not_found`)" }),
        },
      },
    },
    async (request) => {
      const job = migrationFor(scope, request).migration.job(request.params.job_id);
      if (!job) throw notFound(`no legacy job '${request.params.job_id}' on this instance`);
      return jobBody(job);
    },
  );
}

/** The migration, for a request of its tenant only; with `needsStore`, one with a legacy store. */
function migrationFor(
  scope: SessionScope,
  request: FastifyRequest,
  { needsStore = false } = {},
): { migration: LegacyMigration; memory: MemoryManager } {
  const memory = scope.memoryFor(request);
  const migration = memory.legacyMigration;
  if (!migration || (needsStore && !migration.configured)) {
    throw new HttpError(
      404,
      "legacy_not_configured",
      "no legacy store is configured: LEGACY_DATABASE_URL is not set",
    );
  }
  if (memory.tenant !== migration.tenant) {
    throw new HttpError(
      403,
      "forbidden",
      `the legacy store migrates into tenant '${migration.tenant}'; this key's tenant is '${memory.tenant}'`,
    );
  }
  return { migration, memory };
}

function statusBody(status: LegacyStatus) {
  return {
    phase: status.phase,
    tenant: status.tenant,
    retry_queue: {
      total: status.retryQueue.total,
      sessions: status.retryQueue.sessions.map((s) => ({ session_id: s.sessionId, entries: s.entries })),
    },
    write_failures: status.writeFailures,
    legacy_store: status.legacyStore,
    divergences: status.divergences,
  };
}

function jobBody(job: LegacyJob) {
  return {
    job_id: job.id,
    kind: job.kind,
    state: job.state,
    started_at: job.startedAt.toISOString(),
    finished_at: job.finishedAt?.toISOString() ?? null,
    sessions_done: job.sessionsDone,
    result: job.result === null ? null : resultBody(job.result),
    error: job.error,
  };
}

function resultBody(result: LegacyImportTotals | LegacyVerifyResult) {
  if ("diverging" in result) {
    return {
      sessions: result.sessions,
      agree: result.diverging.length === 0,
      diverging: result.diverging.map((verdict) => ({
        session_id: verdict.sessionId,
        legacy_messages: verdict.legacyMessages,
        stored_messages: verdict.storedMessages,
        divergences: verdict.divergences,
      })),
    };
  }
  return {
    sessions: result.sessions,
    messages_read: result.messagesRead,
    messages_stored: result.messagesStored,
    duplicates_skipped: result.duplicatesSkipped,
    skipped_by_reason: result.skippedByReason,
    contexts_saved: result.contextsSaved,
    seconds: result.seconds,
  };
}

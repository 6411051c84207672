import { Readable } from "node:stream";
import type { FastifyRequest } from "fastify";
import { z } from "zod";
import { type ImportTotals, ImportTotalsSchema } from "../../schemas/export.js";
import { splitLines } from "../../sessions/import.js";
import { json } from "../answers.js";
import { HttpError, notFound } from "../http-errors.js";
import { SessionParamsSchema } from "../schemas.js";
import type { SessionScope } from "./session-scope.js";

const NDJSON = "application/x-ndjson";

const EXPORT_EXAMPLE = [
  '{"type":"export","format":"swisper-memory-export","version":1}',
  '{"type":"session","tenant":"acme","session_id":"session_123","title":null,"user_id":"user_42","metadata":{},' +
    '"created_at":"2026-01-31T12:00:00.123456Z","updated_at":"2026-01-31T12:00:03.654321Z","buffer_floor_seq":0,' +
    '"message_count":1,"summary_count":0}',
  '{"type":"message","session_id":"session_123","seq":1,"idempotency_key":null,"tokens":10,"tokens_estimated":false,' +
    '"created_at":"2026-01-31T12:00:03.654321Z","message":{"role":"user","content":"I want to buy a laptop","timestamp":1795492748}}',
  '{"type":"end","sessions":1,"messages":1}',
  "",
].join("\n");

const JsonLinesSchema = z.string().meta({
  description: "JSON Lines (the export format in the README): header, session lines, end line",
  examples: [EXPORT_EXAMPLE],
});

/** `GET /v1/sessions/{session_id}/export` and `POST /v1/imports`: a session out and sessions back, as JSON Lines. */
export function exportRoutes(scope: SessionScope): void {
  exportRoute(scope);
  importRoute(scope);
}

function exportRoute({ routes, memoryFor, metrics, tag, security, errors }: SessionScope): void {
  routes.get(
    "/sessions/:session_id/export",
    {
      schema: {
        operationId: "exportSession",
        tags: [tag],
        summary: "Export the session as JSON Lines",
        description:
          "The session's record, every message (seq, tokens, times, idempotency key), every summary version " +
          "with its range, its config and its SwisperContext, one JSON object per line, streamed. " +
          "`POST /v1/imports` (or `swisper-memory import`) restores it exactly.",
        security,
        params: SessionParamsSchema,
        response: {
          200: { description: "The export", content: { [NDJSON]: { schema: JsonLinesSchema } } },
          ...errors([400, 404]),
        },
      },
    },
    async (request, reply) => {
      const { session_id: sessionId } = request.params;
      const lines = memoryFor(request).exportSession(sessionId);
      // The header, then the session's line, or the end line when the tenant has no such session:
      // read before answering, so that a missing session is a 404, not an empty 200.
      const head = await metrics.timeRead("export", async () => [await lines.next(), await lines.next()]);
      if (head[1]?.done || head[1]?.value.startsWith('{"type":"end"')) {
        throw notFound(`session '${sessionId}' has no memory`);
      }
      async function* body() {
        for (const line of head) if (!line.done) yield `${line.value}\n`;
        for await (const line of lines) yield `${line}\n`;
      }
      // The documented body is the text; fastify streams it from the export, never all in memory.
      return reply.type(NDJSON).send(Readable.from(body()) as unknown as string);
    },
  );
}

function importRoute(scope: SessionScope): void {
  const { routes, memoryFor, metrics, tag, security, errors, importBodyLimitBytes } = scope;
  // The body reaches the route as the request stream, read a line at a time.
  routes.addContentTypeParser(NDJSON, (_request, payload, done) => done(null, payload));
  routes.post(
    "/imports",
    {
      schema: {
        operationId: "importSessions",
        tags: [tag],
        summary: "Import sessions from JSON Lines",
        description:
          "Restores an export (`GET /v1/sessions/{session_id}/export`, `swisper-memory export`) into the " +
          "key's tenant, whatever tenant the file names: seqs, times, tokens, summary versions and ranges, " +
          "config and SwisperContext exactly. Send `Content-Type: application/x-ndjson`; the body is at most " +
          "256 MiB (the service's importBodyLimitBytes). " +
          "Each session is stored whole or not at all. A session already stored with the same content is " +
          "left alone (sending a file twice stores nothing twice); with other content it is a 409. A bad " +
          "line is a 400 naming the line and field; the sessions before it are stored (send the fixed file " +
          "again: they are left alone).",
        security,
        consumes: [NDJSON],
        body: z
          .unknown()
          .meta({ description: "JSON Lines, as an export writes them", examples: [EXPORT_EXAMPLE] }),
        response: {
          200: json("What was imported", ImportTotalsSchema),
          ...errors([400, 409, 413, 415]),
        },
      },
    },
    async (request): Promise<ImportTotals> => {
      const memory = memoryFor(request);
      const lines = splitLines(boundedBody(request, importBodyLimitBytes));
      return metrics.timeWrite("import", () => memory.importSessions(lines));
    },
  );
}

/** The request body's chunks, refused (413) past `limitBytes`. */
async function* boundedBody(request: FastifyRequest, limitBytes: number): AsyncGenerator<Buffer> {
  const tooLarge = () =>
    new HttpError(413, "payload_too_large", `an import body is at most ${limitBytes} bytes`);
  if (Number(request.headers["content-length"] ?? 0) > limitBytes) throw tooLarge();
  const body = request.body;
  if (!(body instanceof Readable)) {
    throw new HttpError(415, "unsupported_media_type", `send JSON Lines (Content-Type: ${NDJSON})`);
  }
  let bytes = 0;
  for await (const chunk of body) {
    bytes += (chunk as Buffer).length;
    if (bytes > limitBytes) throw tooLarge();
    yield chunk as Buffer;
  }
}

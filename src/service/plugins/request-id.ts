import { randomUUID } from "node:crypto";
import type { FastifyServerOptions } from "fastify";
import fp from "fastify-plugin";

// What a caller's id may hold to be logged and echoed as it is: no spaces, quotes or controls.
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Fastify's request-id options (read at construction, hence options, not a hook): the caller's
 * `X-Request-Id` when it is safe to log as given, else a new UUID.
 */
export const requestIdOptions = {
  requestIdHeader: false,
  genReqId: (request) => {
    const given = request.headers["x-request-id"];
    return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
  },
} satisfies Pick<FastifyServerOptions, "requestIdHeader" | "genReqId">;

/** Echoes the request id in `X-Request-Id` on every answer, errors included, so callers can quote it. */
export const requestId = fp(
  async (app) => {
    app.addHook("onRequest", async (request, reply) => {
      reply.header("x-request-id", request.id);
    });
  },
  { name: "request-id" },
);

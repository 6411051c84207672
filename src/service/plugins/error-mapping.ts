import type { FastifyReply, FastifyServerOptions } from "fastify";
import fp from "fastify-plugin";
import { mapError } from "../http-errors.js";

/**
 * Fastify's option (read at construction) for errors before routing: a path Fastify cannot decode
 * (bad percent-encoding) answers in the service's error shape too.
 */
export const frameworkErrors: NonNullable<FastifyServerOptions["frameworkErrors"]> = (
  error,
  _request,
  reply,
) => {
  const answer =
    (error as { code?: string }).code === "FST_ERR_BAD_URL"
      ? {
          statusCode: 400,
          body: {
            error: { code: "invalid_input", message: "path: is not valid percent-encoding", field: "path" },
          },
        }
      : mapError(error, "");
  void (reply as unknown as FastifyReply).code(answer.statusCode).send(answer.body);
};

/**
 * Every error answers `{ error: { code, message, field? } }` with the status `mapError` gives its
 * type; an unexpected one is logged with the request id its message names, an outage as a
 * warning. Unknown routes answer 404 `not_found` in the same shape.
 */
export const errorMapping = fp(
  async (app) => {
    app.setErrorHandler((error, request, reply) => {
      const mapped = mapError(error, request.id);
      if (mapped.internal) request.log.error({ err: error }, "request failed");
      else if (mapped.statusCode === 503) request.log.warn({ code: mapped.body.error.code }, "unavailable");
      return reply.code(mapped.statusCode).headers(mapped.headers).send(mapped.body);
    });
    app.setNotFoundHandler((request, reply) =>
      reply.code(404).send({
        error: { code: "not_found", message: `no route ${request.method} ${request.url.split("?")[0]}` },
      }),
    );
  },
  { name: "error-mapping" },
);

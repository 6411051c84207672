import {
  type FastifyBaseLogger,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
  LogController,
} from "fastify";

/** One log line per request, when it completes (fastify's default is two, with whole headers). */
class RequestLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    const fields = {
      method: request.method,
      url: request.url,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 1000) / 1000,
    };
    if (error) reply.log.error({ ...fields, err: error }, "request failed while responding");
    else reply.log.info(fields, "request");
  }
}

/**
 * Fastify's logging options (read at construction): the given pino logger, one line per request;
 * without one, silent.
 */
export function requestLogOptions(
  logger: FastifyBaseLogger | undefined,
): Pick<FastifyServerOptions, "logger" | "loggerInstance" | "logController"> {
  return {
    ...(logger ? { loggerInstance: logger } : { logger: false }),
    logController: new RequestLog(),
  };
}

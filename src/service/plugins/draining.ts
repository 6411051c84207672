import type { FastifyServerOptions } from "fastify";
import fp from "fastify-plugin";
import { HttpError } from "../http-errors.js";

declare module "fastify" {
  interface FastifyInstance {
    /** True once the service has begun to close: it finishes its requests and takes no new ones. */
    isDraining(): boolean;
  }
}

/** Fastify's option (read at construction): while closing, requests get this plugin's 503, not Fastify's. */
export const drainingOptions = { return503OnClosing: false } satisfies Pick<
  FastifyServerOptions,
  "return503OnClosing"
>;

export interface DrainingOptions {
  /** Paths that keep answering while draining (default `["/live"]`). */
  openPaths?: readonly string[];
}

/**
 * From `app.close()` on, every request but `openPaths` answers 503 `shutting_down` with
 * `Retry-After` and closes its connection, so a load balancer retries it on another instance.
 * Liveness stays open: a process finishing its requests is alive, not to be killed.
 */
export const draining = fp<DrainingOptions>(
  async (app, { openPaths = ["/live"] }) => {
    let closing = false;
    app.decorate("isDraining", () => closing);
    app.addHook("preClose", async () => {
      closing = true;
    });
    app.addHook("onRequest", async (request, reply) => {
      if (!closing || openPaths.includes(request.url)) return;
      reply.header("connection", "close");
      throw new HttpError(503, "shutting_down", "the service is shutting down; retry on another instance", {
        headers: { "retry-after": "1" },
      });
    });
  },
  { name: "draining" },
);

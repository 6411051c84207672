import fp from "fastify-plugin";
import type { MemoryMetrics } from "../../metrics/index.js";

export interface HttpMetricsOptions {
  metrics: MemoryMetrics;
}

/** Counts and times every answer by method, route pattern (never the raw path) and status. */
export const httpMetrics = fp<HttpMetricsOptions>(
  async (app, { metrics }) => {
    app.addHook("onResponse", async (request, reply) => {
      const route = request.routeOptions.url ?? "unmatched";
      metrics.observeHttp(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
    });
  },
  { name: "http-metrics" },
);

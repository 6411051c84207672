import { startMemoryService } from "../service/server.js";
import { type Command, parseCommandLine } from "./command.js";

export const serveCommand: Command = {
  name: "serve",
  summary: "Run the HTTP service (JSON API under /v1, /health, /metrics, docs at /docs)",
  help: `Usage: swisper-memory serve

Serves the memory over HTTP until SIGTERM or SIGINT, then drains requests and running
summarization jobs. Logs are JSON lines on stdout (pino), one per request, with its request id.

Environment:
  PORT                          port (default 8080)
  HOST                          address (default 127.0.0.1 without API keys, 0.0.0.0 with them;
                                without keys only a loopback address is accepted)
  MEMORY_API_KEYS               API keys bound to tenants: "tenant:key,tenant2:key2"
  MEMORY_API_KEYS_FILE          a file of tenant:key lines (# comments); merged with the above
  MEMORY_BODY_LIMIT_BYTES       largest request body (default 2097152)
  MEMORY_RATE_LIMIT_PER_MINUTE  requests per key and minute, counted in Redis when configured
                                (default 120000; 0 turns it off)
  MEMORY_SHUTDOWN_TIMEOUT_MS    how long shutdown waits for requests and jobs (default 10000)
  LOG_LEVEL                     fatal, error, warn, info (default), debug, trace, silent
  DATABASE_URL, MEMORY_DATA_DIR, REDIS_URL, ...   the memory's own settings (see README)

With nothing set it serves http://127.0.0.1:8080 on the embedded database (docs at /docs).`,
  async run(args, { env }) {
    parseCommandLine(args, {}, { min: 0, max: 0 });
    const service = await startMemoryService({ env });
    await service.stopped;
    return 0;
  },
};

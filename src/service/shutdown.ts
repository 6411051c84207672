import type { FastifyInstance } from "fastify";
import type { Logger as PinoLogger } from "pino";
import type { MemoryManager } from "../manager/memory-manager.js";
import type { RedisConnection } from "../storage/redis-client.js";

export interface ShutdownOptions {
  app: FastifyInstance;
  memory: MemoryManager;
  /** The Redis connection the service opened, if any: closed last. */
  redis: RedisConnection | null;
  log: PinoLogger;
  /** How long running requests and summarization jobs get, in ms. */
  timeoutMs: number;
  /** Stop on SIGTERM and SIGINT; a second signal exits at once. */
  handleSignals: boolean;
}

export interface Shutdown {
  /** Stops once, however often called; each call resolves when the service has stopped. */
  stop(): Promise<void>;
  /** Resolves when the service has stopped (after `stop()` or a signal). */
  stopped: Promise<void>;
}

/** How the service stops: on `stop()` or a signal, it drains, then closes what it opened. */
export function gracefulShutdown(options: ShutdownOptions): Shutdown {
  let resolveStopped: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= drain(options).finally(() => {
      removeSignalHandlers();
      resolveStopped();
    });
    return stopping;
  };
  const removeSignalHandlers = options.handleSignals
    ? stopOnSignals(options.log, stop, () => stopping !== null)
    : () => {};
  return { stop, stopped };
}

/**
 * Refuses new requests, waits for the running ones, lets running summarization jobs finish (up to
 * the timeout), then closes the manager and the Redis connection.
 */
async function drain({ app, memory, redis, log, timeoutMs }: ShutdownOptions): Promise<void> {
  const started = Date.now();
  log.info({ timeout_ms: timeoutMs }, "shutting down: draining requests");
  // A shutdown that hangs (a request that never ends) must not keep the process forever.
  const deadline = setTimeout(() => {
    log.error({}, "shutdown timed out; exiting");
    process.exit(1);
  }, timeoutMs + 5000);
  deadline.unref();
  // A request that never ends (a client that stopped sending its body, or never reads the
  // answer) must not hold the rest of the shutdown: once the drain time is up, the connections
  // still open are closed, and the manager and Redis are closed as usual.
  const cutOff = setTimeout(() => app.server.closeAllConnections(), timeoutMs);
  cutOff.unref();
  try {
    await app.close().finally(() => clearTimeout(cutOff));
    const remaining = Math.max(0, timeoutMs - (Date.now() - started));
    const idle = await settlesWithin(memory.waitForIdle(), remaining);
    log.info(
      { summarization_idle: idle },
      idle ? "summarization jobs drained" : "summarization jobs cut short",
    );
    await memory.close();
    await redis?.close();
    log.info({ ms: Date.now() - started }, "stopped");
  } finally {
    clearTimeout(deadline);
  }
}

/** SIGTERM and SIGINT stop the service; a second one, while it stops, exits at once. Returns the remover. */
function stopOnSignals(log: PinoLogger, stop: () => Promise<void>, isStopping: () => boolean): () => void {
  const onSignal = (signal: NodeJS.Signals) => {
    if (isStopping()) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    log.info({ signal }, "signal received");
    stop().catch((error: unknown) => {
      log.error({ err: error }, "shutdown failed");
      process.exitCode = 1;
    });
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  return () => {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  };
}

async function settlesWithin(promise: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

import { createClient, createCluster, type RedisClientType, type RedisClusterType } from "redis";

/**
 * The few Redis operations the hot tier needs, over a standalone client or a cluster alike.
 * Commands that touch keys name one of them so that a cluster routes the command to its slot.
 */
export interface RedisConnection {
  /** Sends one command. `key` routes it in a cluster; `readonly` lets a cluster use replicas. */
  send(args: readonly string[], route?: { key?: string; readonly?: boolean }): Promise<unknown>;
  /** `INFO` text of every primary (one for standalone). */
  info(section: string): Promise<string[]>;
  /** Every key matching `pattern`, from every primary (SCAN, never KEYS). */
  scanKeys(pattern: string): Promise<string[]>;
  /** True while a command can be sent without waiting for a reconnect. */
  readonly isReady: boolean;
  /**
   * Calls `listener` each time the connection is ready again after it was lost (not on the first
   * connect). Redis may have restarted meanwhile, with its old data or none.
   */
  onReconnect(listener: () => void): void;
  /** Closes the connection only when this object created it. */
  close(): Promise<void>;
}

export interface RedisConnectionOptions {
  /** `redis://[user:pass@]host:port[/db]`. */
  url: string;
  /** Milliseconds to wait for a TCP connection (default 2000). */
  connectTimeoutMs?: number;
  /** Milliseconds between reconnect attempts while the server is away (default 500). */
  reconnectDelayMs?: number;
  /** Treat `url` as one node of a Redis Cluster (default false). */
  cluster?: boolean;
  /**
   * Milliseconds a command may take before it fails (default 1000), so that a server that stops
   * answering without closing its connections (paused, overloaded) counts as down.
   */
  commandTimeoutMs?: number;
}

type StandaloneClient = RedisClientType;
type ClusterClient = RedisClusterType;

/**
 * Connects to Redis and fails fast while it is away: no offline queue, so a command issued during
 * an outage rejects at once and the circuit breaker, not a hidden queue, decides what to do.
 */
export async function connectRedis(options: RedisConnectionOptions): Promise<RedisConnection> {
  const {
    url,
    connectTimeoutMs = 2000,
    reconnectDelayMs = 500,
    cluster = false,
    commandTimeoutMs = 1000,
  } = options;
  const socket = { connectTimeout: connectTimeoutMs, reconnectStrategy: () => reconnectDelayMs };
  if (cluster) {
    const client = createCluster({
      rootNodes: [{ url }],
      defaults: { socket, disableOfflineQueue: true },
    });
    client.on("error", () => {});
    await connectWithin(client.connect(), connectTimeoutMs);
    return new ClusterConnection(client, true, commandTimeoutMs);
  }
  const client = createClient({ url, socket, disableOfflineQueue: true });
  // Connection errors also surface as rejected commands; the listener keeps them from crashing
  // the process as unhandled 'error' events while the client reconnects.
  client.on("error", () => {});
  await connectWithin(client.connect(), connectTimeoutMs);
  return new StandaloneConnection(client, true, commandTimeoutMs);
}

async function scanAll(send: (args: string[]) => Promise<unknown>, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = (await send(["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"])) as [
      string,
      string[],
    ];
    cursor = next;
    keys.push(...batch);
  } while (cursor !== "0");
  return keys;
}

/** Thrown when Redis took longer than the command timeout to answer. */
export class RedisCommandTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`Redis did not answer within ${timeoutMs} ms`);
    this.name = "RedisCommandTimeoutError";
  }
}

/**
 * Rejects when the reply takes longer than `timeoutMs`. The command itself may still run when a
 * paused server resumes: the buffer scripts check seqs and versions, so a late run of one is a
 * no-op or what a retry would do; a late outbox append stores a write whose caller was told it
 * failed (stored, never lost).
 */
function withTimeout<T>(reply: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RedisCommandTimeoutError(timeoutMs)), timeoutMs);
  });
  return Promise.race([reply, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Waits for the first connection at most `timeoutMs`. A Redis that is down at start-up must not
 * stop the process from starting: the client keeps reconnecting in the background, commands fail
 * fast meanwhile, and the system of record serves.
 */
async function connectWithin(connecting: Promise<unknown>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  await Promise.race([
    connecting.then(
      () => {},
      () => {},
    ),
    timeout,
  ]);
  clearTimeout(timer);
}

/** Wraps a node-redis client the caller created and owns (it is never closed here). */
export function wrapRedisClient(client: StandaloneClient, commandTimeoutMs = 1000): RedisConnection {
  return new StandaloneConnection(client, false, commandTimeoutMs);
}

class StandaloneConnection implements RedisConnection {
  readonly #client: StandaloneClient;
  readonly #owned: boolean;
  readonly #timeout: number;
  constructor(client: StandaloneClient, owned: boolean, commandTimeoutMs: number) {
    this.#client = client;
    this.#owned = owned;
    this.#timeout = commandTimeoutMs;
  }
  get isReady(): boolean {
    return this.#client.isReady;
  }
  onReconnect(listener: () => void): void {
    let connectedBefore = this.#client.isReady;
    this.#client.on("ready", () => {
      if (connectedBefore) listener();
      connectedBefore = true;
    });
  }
  send(args: readonly string[]): Promise<unknown> {
    return withTimeout(this.#client.sendCommand([...args]), this.#timeout);
  }
  async info(section: string): Promise<string[]> {
    return [await this.#client.info(section)];
  }

  scanKeys(pattern: string): Promise<string[]> {
    return scanAll((args) => withTimeout(this.#client.sendCommand(args), this.#timeout), pattern);
  }
  async close(): Promise<void> {
    if (!this.#owned) return;
    if (this.#client.isOpen) this.#client.destroy();
  }
}

class ClusterConnection implements RedisConnection {
  readonly #client: ClusterClient;
  readonly #owned: boolean;
  readonly #timeout: number;
  constructor(client: ClusterClient, owned: boolean, commandTimeoutMs: number) {
    this.#client = client;
    this.#owned = owned;
    this.#timeout = commandTimeoutMs;
  }
  get isReady(): boolean {
    return this.#client.masters.length > 0 && this.#client.masters.every((node) => node.client !== undefined);
  }
  onReconnect(listener: () => void): void {
    // Node clients also connect lazily (new primaries, slot moves): every node becoming ready
    // after start-up counts, which at worst costs one needless check.
    this.#client.on("node-ready", listener);
  }
  send(args: readonly string[], route: { key?: string; readonly?: boolean } = {}): Promise<unknown> {
    return withTimeout(
      this.#client.sendCommand(route.key, route.readonly ?? false, [...args]),
      this.#timeout,
    );
  }
  async info(section: string): Promise<string[]> {
    const texts: string[] = [];
    for (const master of this.#client.masters) {
      const client = await this.#client.nodeClient(master);
      texts.push(await client.info(section));
    }
    return texts;
  }

  async scanKeys(pattern: string): Promise<string[]> {
    const keys: string[] = [];
    for (const master of this.#client.masters) {
      const client = await this.#client.nodeClient(master);
      keys.push(...(await scanAll((args) => withTimeout(client.sendCommand(args), this.#timeout), pattern)));
    }
    return keys;
  }
  async close(): Promise<void> {
    if (this.#owned) this.#client.destroy();
  }
}

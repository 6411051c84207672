import {
  createClient,
  createCluster,
  createSentinel,
  ErrorReply,
  type RedisClientType,
  type RedisClusterType,
  type RedisSentinelType,
} from "redis";
import { errorCode } from "../error-code.js";
import { ReplyReader } from "./redis-reply.js";
import { addressOf } from "./server-address.js";

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
   * Find the primary through Redis Sentinel instead (`url` then only carries the password and
   * database): the sentinels' addresses and the name they monitor the primary under.
   */
  sentinel?: { nodes: readonly { host: string; port: number }[]; name: string };
  /**
   * Milliseconds a command may take before it fails (default 1000), so that a server that stops
   * answering without closing its connections (paused, overloaded) counts as down.
   */
  commandTimeoutMs?: number;
  /**
   * Where `url` came from (`REDIS_URL`, `REDIS_HOST`, an option's name), named with the server's
   * address and the socket's error code when it cannot be reached (default "the Redis URL").
   */
  source?: string;
}

type StandaloneClient = RedisClientType;
type ClusterClient = RedisClusterType;
type SentinelClient = RedisSentinelType;

/**
 * node-redis' own Sentinel client: it asks the sentinels for the primary, follows their
 * +switch-master announcements, and re-discovers the topology every second besides, so that a
 * failover is used within about a second of the sentinels deciding it.
 */
function connectSentinel(
  url: string,
  sentinel: NonNullable<RedisConnectionOptions["sentinel"]>,
  socket: { connectTimeout: number; reconnectStrategy: () => number },
) {
  const parsed = new URL(url);
  const database = Number(parsed.pathname.replace(/^\//, "") || 0);
  const password = parsed.password ? decodeURIComponent(parsed.password) : undefined;
  const username = parsed.username ? decodeURIComponent(parsed.username) : undefined;
  return createSentinel({
    name: sentinel.name,
    sentinelRootNodes: [...sentinel.nodes],
    scanInterval: 1000,
    // One connection per replica: reads that pass min_seq (or all, MEMORY_READ_FROM_REPLICAS=eventual) go there.
    replicaPoolSize: 1,
    nodeClientOptions: {
      socket,
      disableOfflineQueue: true,
      ...(database ? { database } : {}),
      ...(password !== undefined ? { password } : {}),
      ...(username !== undefined ? { username } : {}),
    },
    sentinelClientOptions: { socket },
    commandOptions,
  });
}

/**
 * node-redis's own command timeout (5 s unless set) is off: withTimeout bounds every command.
 * node-redis's bounds only the wait to be written to the socket, so it never sees a paused server,
 * and it is the dearer one: bench/redis-timeout.bench.ts (200,000 pipelined PINGs, CPU per call,
 * median of 7 rounds, 2 cores) measured 1.2 µs with no timeout, 2.6 µs with withTimeout alone,
 * 13.0 µs with node-redis's default alone, 14.6 to 17.9 µs with node-redis's set to 1 s, and
 * 15.6 µs with both (as before): throughput went from 35,500 to 185,000 calls/s.
 */
const commandOptions = { timeout: 0 };

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
    source = "the Redis URL",
  } = options;
  const socket = { connectTimeout: connectTimeoutMs, reconnectStrategy: () => reconnectDelayMs };
  const unreachable = new SocketErrors(addressOf(url, 6379) ?? url, source);
  if (options.sentinel) {
    const client = connectSentinel(url, options.sentinel, socket) as SentinelClient;
    unreachable.watch(client);
    await connectWithin(client.connect(), connectTimeoutMs);
    return new SentinelConnection(client, true, commandTimeoutMs, unreachable);
  }
  if (cluster) {
    const client = createCluster({
      rootNodes: [{ url }],
      defaults: { socket, disableOfflineQueue: true },
      // Routed commands carry it to the node clients (INFO and SCAN, sent rarely, keep theirs).
      commandOptions,
    });
    unreachable.watch(client);
    await connectWithin(client.connect(), connectTimeoutMs);
    return new ClusterConnection(client, true, commandTimeoutMs, unreachable);
  }
  const client = createClient({ url, socket, disableOfflineQueue: true, commandOptions });
  unreachable.watch(client);
  await connectWithin(client.connect(), connectTimeoutMs);
  return new StandaloneConnection(client, true, commandTimeoutMs, unreachable);
}

/**
 * A command sent while the connection is down. It names the server, where its address came from
 * and the socket's error code (ECONNREFUSED, ENOTFOUND, ...), so that a mistyped REDIS_URL does
 * not look like an outage of the right server. `code` is the socket's code.
 */
export class RedisUnreachableError extends Error {
  readonly code: string;
  constructor(
    address: string,
    source: string,
    socketError: NodeJS.ErrnoException,
    options: { cause: unknown },
  ) {
    // The socket's code; for node-redis's own uncoded errors, their class (as the command's).
    const socketCode = errorCode(socketError);
    const code = socketCode === "Error" || socketCode === "unknown" ? errorCode(options.cause) : socketCode;
    super(`Redis at ${address} (${source}) is unreachable: ${code} (${socketError.message})`, options);
    this.name = "RedisUnreachableError";
    this.code = code;
  }
}

/**
 * The last socket error of a connection, until it is ready again. node-redis rejects commands of
 * a disconnected client with a bare "The client is offline"; the socket's own error (emitted as
 * 'error' while it reconnects) is what says why.
 */
class SocketErrors {
  #last: NodeJS.ErrnoException | null = null;
  constructor(
    readonly address: string,
    readonly source: string,
  ) {}

  watch(client: { on(event: string, listener: (error: NodeJS.ErrnoException) => void): unknown }): void {
    // The listener also keeps these errors from crashing the process as unhandled 'error' events.
    client.on("error", (error) => {
      if (!(error instanceof ErrorReply)) this.#last = error;
    });
    client.on("ready", () => {
      this.#last = null;
    });
  }

  /** The command's error, or a RedisUnreachableError when the socket says why it failed. */
  explain(error: unknown): unknown {
    if (this.#last === null || error instanceof ErrorReply || error instanceof RedisCommandTimeoutError) {
      return error;
    }
    return new RedisUnreachableError(this.address, this.source, this.#last, { cause: error });
  }
}

async function scanAll(send: (args: string[]) => Promise<unknown>, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const read = new ReplyReader("SCAN", await send(["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"]));
    const [next, batch] = read.tuple(2);
    cursor = read.string(next, "the cursor");
    keys.push(...read.strings(batch, "the keys"));
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
function withTimeout<T>(reply: Promise<T>, timeoutMs: number, errors?: SocketErrors): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RedisCommandTimeoutError(timeoutMs)), timeoutMs);
  });
  const answered = Promise.race([reply, timeout]).finally(() => clearTimeout(timer));
  if (!errors) return answered;
  return answered.catch((error: unknown) => {
    throw errors.explain(error);
  });
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

/**
 * Wraps a node-redis client the caller created and owns (it is never closed here). withTimeout
 * bounds its commands; create it with `commandOptions: { timeout: 0 }` to spare node-redis's
 * own, costlier timer (see `commandOptions`).
 */
export function wrapRedisClient(client: StandaloneClient, commandTimeoutMs = 1000): RedisConnection {
  return new StandaloneConnection(client, false, commandTimeoutMs);
}

/** What both kinds of connection keep: the client, whether it is theirs to close, and the timer. */
abstract class TimedConnection<Client> {
  protected readonly client: Client;
  protected readonly owned: boolean;
  readonly #timeout: number;
  readonly #errors: SocketErrors | undefined;
  constructor(client: Client, owned: boolean, commandTimeoutMs: number, errors?: SocketErrors) {
    this.client = client;
    this.owned = owned;
    this.#timeout = commandTimeoutMs;
    this.#errors = errors;
  }

  /** `reply` bounded by the command timeout, its failure explained by the socket's error. */
  protected timed<T>(reply: Promise<T>): Promise<T> {
    return withTimeout(reply, this.#timeout, this.#errors);
  }
}

class StandaloneConnection extends TimedConnection<StandaloneClient> implements RedisConnection {
  get isReady(): boolean {
    return this.client.isReady;
  }
  onReconnect(listener: () => void): void {
    let connectedBefore = this.client.isReady;
    this.client.on("ready", () => {
      if (connectedBefore) listener();
      connectedBefore = true;
    });
  }
  send(args: readonly string[]): Promise<unknown> {
    return this.timed(this.client.sendCommand([...args]));
  }
  async info(section: string): Promise<string[]> {
    return [await this.timed(this.client.info(section))];
  }

  scanKeys(pattern: string): Promise<string[]> {
    return scanAll((args) => this.timed(this.client.sendCommand(args)), pattern);
  }
  async close(): Promise<void> {
    if (!this.owned) return;
    if (this.client.isOpen) this.client.destroy();
  }
}

/** Redis behind Sentinel: commands go to the primary; those sent `readonly` to a replica. */
export class SentinelConnection extends TimedConnection<SentinelClient> implements RedisConnection {
  get isReady(): boolean {
    return this.client.isReady;
  }
  onReconnect(listener: () => void): void {
    // A new primary (a failover) is another server: what a reconnect to a restarted one asks for.
    this.client.on("topology-change", (event: { type: string }) => {
      if (event.type === "MASTER_CHANGE") listener();
    });
  }
  send(args: readonly string[], route: { readonly?: boolean } = {}): Promise<unknown> {
    return this.timed(this.client.sendCommand(route.readonly ?? false, [...args]));
  }
  async info(section: string): Promise<string[]> {
    return [String(await this.timed(this.client.sendCommand(false, ["INFO", section])))];
  }
  scanKeys(pattern: string): Promise<string[]> {
    return scanAll((args) => this.timed(this.client.sendCommand(false, args)), pattern);
  }
  async close(): Promise<void> {
    if (this.owned) await this.client.destroy().catch(() => {});
  }
}

class ClusterConnection extends TimedConnection<ClusterClient> implements RedisConnection {
  get isReady(): boolean {
    return this.client.masters.length > 0 && this.client.masters.every((node) => node.client !== undefined);
  }
  onReconnect(listener: () => void): void {
    // Node clients also connect lazily (new primaries, slot moves): every node becoming ready
    // after start-up counts, which at worst costs one needless check.
    this.client.on("node-ready", listener);
  }
  send(args: readonly string[], route: { key?: string; readonly?: boolean } = {}): Promise<unknown> {
    return this.timed(this.client.sendCommand(route.key, route.readonly ?? false, [...args]));
  }
  async info(section: string): Promise<string[]> {
    const texts: string[] = [];
    for (const master of this.client.masters) {
      const client = await this.client.nodeClient(master);
      texts.push(await client.info(section));
    }
    return texts;
  }

  async scanKeys(pattern: string): Promise<string[]> {
    const keys: string[] = [];
    for (const master of this.client.masters) {
      const client = await this.client.nodeClient(master);
      keys.push(...(await scanAll((args) => this.timed(client.sendCommand(args)), pattern)));
    }
    return keys;
  }
  async close(): Promise<void> {
    if (this.owned) this.client.destroy();
  }
}

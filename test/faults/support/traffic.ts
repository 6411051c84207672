import type { FastifyInstance } from "fastify";
import { MemoryError } from "../../../src/errors.js";
import type { MemoryContext, MemoryManager } from "../../../src/manager/memory-manager.js";
import { mapError } from "../../../src/service/index.js";
import type { ChatMessage } from "../../../src/types.js";
import { randomMessage, seededRandom } from "../../support/fixtures.js";
import { sleep } from "./environment.js";

// Clients (the library, or the HTTP service in-process) and the one traffic recorder: every
// acknowledged write, per session, in acknowledgement order, with what the acknowledgement said.

/** What an acknowledgement promised. After the fix a provisional one promises no seq (null). */
export interface Acknowledgement {
  seq: number | null;
  duplicate: boolean;
  provisional?: boolean;
}

export type WriteOutcome =
  | { kind: "ack"; ack: Acknowledgement; status?: number }
  /** A typed refusal: StorageUnavailableError (or another unavailability error), HTTP 503. */
  | { kind: "unavailable"; status?: number; retryAfter?: string | null; error: string }
  /** Anything else: a non-typed error, a 5xx other than 503, a 4xx for a valid write. */
  | { kind: "unexpected"; status?: number; error: string };

export type ReadOutcome =
  | { kind: "context"; context: MemoryContext }
  | { kind: "missing" }
  | { kind: "unavailable"; error: string }
  | { kind: "unexpected"; status?: number; error: string };

export interface Client {
  readonly name: string;
  write(session: string, message: ChatMessage): Promise<WriteOutcome>;
  read(session: string): Promise<ReadOutcome>;
  erase(session: string): Promise<{ ok: boolean; status?: number; error?: string }>;
}

/** A typed error the HTTP layer answers with 503 (StorageUnavailableError and its kin). */
export function isTypedUnavailable(error: unknown): boolean {
  return error instanceof MemoryError && mapError(error, "check").statusCode === 503;
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** The library as a client: `addMessages`, `getContext`, `clearSessionMemory`. */
export function libraryClient(manager: MemoryManager, name = "library"): Client {
  return {
    name,
    async write(session, message) {
      try {
        const [ack] = await manager.addMessages(session, [message]);
        return { kind: "ack", ack: ack as Acknowledgement };
      } catch (error) {
        if (isTypedUnavailable(error)) return { kind: "unavailable", error: describeError(error) };
        return { kind: "unexpected", error: describeError(error) };
      }
    },
    async read(session) {
      try {
        const context = await manager.getContext(session);
        if (context.buffer_info.last_seq === 0 && context.summary === null) return { kind: "missing" };
        return { kind: "context", context };
      } catch (error) {
        if (isTypedUnavailable(error)) return { kind: "unavailable", error: describeError(error) };
        return { kind: "unexpected", error: describeError(error) };
      }
    },
    async erase(session) {
      try {
        await manager.clearSessionMemory(session);
        return { ok: true };
      } catch (error) {
        return { ok: false, error: describeError(error) };
      }
    },
  };
}

/** The HTTP service (in-process, `app.inject`) as a client. */
export function httpClient(app: FastifyInstance, name = "http"): Client {
  const path = (session: string) => `/v1/sessions/${encodeURIComponent(session)}`;
  return {
    name,
    async write(session, message) {
      const response = await app.inject({
        method: "POST",
        url: `${path(session)}/messages`,
        payload: message as unknown as Record<string, unknown>,
      });
      if (response.statusCode === 200 || response.statusCode === 201) {
        const body = JSON.parse(response.body) as { messages: Acknowledgement[] };
        return { kind: "ack", ack: body.messages[0]!, status: response.statusCode };
      }
      if (response.statusCode === 503) {
        const retryAfter = response.headers["retry-after"];
        return {
          kind: "unavailable",
          status: 503,
          retryAfter: retryAfter === undefined ? null : String(retryAfter),
          error: response.body,
        };
      }
      return { kind: "unexpected", status: response.statusCode, error: response.body };
    },
    async read(session) {
      const response = await app.inject({ method: "GET", url: `${path(session)}/context` });
      if (response.statusCode === 200) return { kind: "context", context: JSON.parse(response.body) };
      if (response.statusCode === 404) return { kind: "missing" };
      if (response.statusCode === 503) return { kind: "unavailable", error: response.body };
      return { kind: "unexpected", status: response.statusCode, error: response.body };
    },
    async erase(session) {
      const response = await app.inject({ method: "DELETE", url: path(session) });
      return response.statusCode === 204
        ? { ok: true, status: 204 }
        : { ok: false, status: response.statusCode, error: response.body };
    },
  };
}

/** One acknowledged write, as the client was told. */
export interface AckRecord {
  session: string;
  id: string;
  content: string;
  ack: Acknowledgement;
  /** performance.now() when the acknowledgement arrived. */
  at: number;
  /** How long the attempt that was acknowledged took, in ms. */
  latencyMs: number;
}

export interface WriteOptions {
  /** Attempts after a typed refusal (503), each with the same `id` (default 0). */
  retries?: number;
  /** Pause between attempts, in ms (default 100). */
  retryDelayMs?: number;
  /** Called with each attempt's latency. */
  onLatency?(ms: number, at: number): void;
}

/**
 * The traffic recorder. Every message gets a unique id and a content that starts with it; what
 * each write answered is kept: acknowledgements per session in acknowledgement order, typed
 * refusals, and unexpected errors (which a committed write must never get).
 */
export class WriteLog {
  readonly acks = new Map<string, AckRecord[]>();
  /** Every id ever sent, per session (acknowledged or not): the rows the transcript may hold. */
  readonly attempted = new Map<string, Set<string>>();
  readonly unexpected: { session: string; id: string; status?: number; error: string }[] = [];
  /** Typed refusals (503), and the Retry-After they carried (HTTP). */
  refusals = 0;
  refusalsWithoutRetryAfter = 0;
  /** The distinct refusal messages seen (a few), to tell what refused the writes. */
  readonly refusalKinds = new Map<string, number>();
  /** Writes refused on every attempt (never acknowledged). */
  gaveUp = 0;
  readonly #tag: string;
  #next = 0;
  readonly #random = seededRandom(11);

  /** `tag` prefixes every id (anything but letters, digits and `-` becomes `-`). */
  constructor(tag: string) {
    this.#tag = tag.replace(/[^A-Za-z0-9-]+/g, "-");
  }

  /** A new message: `content` begins with its unique id, followed by `words` chat words. */
  message(words = 8): ChatMessage & { id: string; content: string } {
    const id = `${this.#tag}-${this.#next++}`;
    const body = randomMessage(this.#random, words);
    return { role: body.role, content: `${id} ${String(body.content)}`, id };
  }

  /**
   * Sends one message (retrying a typed refusal with the same id), records the outcome, and
   * returns the acknowledgement, or null when it was never acknowledged.
   */
  async write(
    client: Client,
    session: string,
    message: ChatMessage & { id: string; content: string } = this.message(),
    options: WriteOptions = {},
  ): Promise<AckRecord | null> {
    const attempts = 1 + (options.retries ?? 0);
    this.recordAttempt(session, message.id);
    for (let attempt = 0; attempt < attempts; attempt++) {
      const started = performance.now();
      const outcome = await client.write(session, message);
      const at = performance.now();
      options.onLatency?.(at - started, at);
      if (outcome.kind === "ack") return this.recordAck(session, message, outcome.ack, at - started);
      if (outcome.kind === "unexpected") {
        this.unexpected.push({
          session,
          id: message.id,
          ...(outcome.status !== undefined ? { status: outcome.status } : {}),
          error: outcome.error.slice(0, 300),
        });
        return null;
      }
      this.refusals++;
      const kind = outcome.error.replace(/\d+/g, "N").slice(0, 160);
      if (this.refusalKinds.size < 20 || this.refusalKinds.has(kind))
        this.refusalKinds.set(kind, (this.refusalKinds.get(kind) ?? 0) + 1);
      if (outcome.status === 503 && !outcome.retryAfter) this.refusalsWithoutRetryAfter++;
      if (attempt + 1 < attempts) await sleep(options.retryDelayMs ?? 100);
    }
    this.gaveUp++;
    return null;
  }

  /** Notes that a message was sent (for writes another process made, e.g. a child). */
  recordAttempt(session: string, id: string): void {
    const ids = this.attempted.get(session) ?? new Set<string>();
    ids.add(id);
    this.attempted.set(session, ids);
  }

  /** Records an acknowledgement, in acknowledgement order (for writes another process made too). */
  recordAck(
    session: string,
    message: { id: string; content: string },
    ack: Acknowledgement,
    latencyMs = 0,
  ): AckRecord {
    this.recordAttempt(session, message.id);
    const record: AckRecord = {
      session,
      id: message.id,
      content: message.content,
      ack,
      at: performance.now(),
      latencyMs,
    };
    const list = this.acks.get(session) ?? [];
    list.push(record);
    this.acks.set(session, list);
    return record;
  }

  get acknowledged(): number {
    let count = 0;
    for (const list of this.acks.values()) count += list.length;
    return count;
  }

  get provisional(): number {
    let count = 0;
    for (const list of this.acks.values()) count += list.filter((record) => record.ack.provisional).length;
    return count;
  }

  allAcks(): AckRecord[] {
    return [...this.acks.values()].flat();
  }
}

/** Problems of one context read: its figures must agree with the messages it returned. */
export function contextProblems(context: MemoryContext): string | null {
  const messages = context.buffer_messages;
  const info = context.buffer_info;
  if (info.message_count !== messages.length)
    return `message_count ${info.message_count} but ${messages.length} buffer messages`;
  const tokens = messages.reduce((sum, message) => sum + message.tokens, 0);
  if (info.total_tokens !== tokens)
    return `total_tokens ${info.total_tokens} but the messages add up to ${tokens}`;
  for (let i = 1; i < messages.length; i++) {
    if (messages[i]!.seq <= messages[i - 1]!.seq) return `seqs not increasing at ${messages[i]!.seq}`;
  }
  if (messages.length > 0 && info.last_seq < messages.at(-1)!.seq)
    return `last_seq ${info.last_seq} below the newest message's seq ${messages.at(-1)!.seq}`;
  if (context.summary && messages.length > 0 && messages[0]!.seq <= context.summary.last_seq)
    return `buffer message ${messages[0]!.seq} already covered by the summary up to ${context.summary.last_seq}`;
  return null;
}

/** Reads that must each be self-consistent; counts how many were not (and keeps a few). */
export class ReadLog {
  reads = 0;
  missing = 0;
  unavailable = 0;
  inconsistent = 0;
  readonly examples: string[] = [];
  readonly unexpected: string[] = [];

  async read(client: Client, session: string): Promise<ReadOutcome> {
    const outcome = await client.read(session);
    this.reads++;
    if (outcome.kind === "context") {
      const problem = contextProblems(outcome.context);
      if (problem) {
        this.inconsistent++;
        if (this.examples.length < 5) this.examples.push(`${session}: ${problem}`);
      }
    } else if (outcome.kind === "missing") this.missing++;
    else if (outcome.kind === "unavailable") this.unavailable++;
    else if (this.unexpected.length < 20) this.unexpected.push(`${outcome.status ?? ""} ${outcome.error}`);
    return outcome;
  }
}

export interface TrafficOptions {
  /** Writers at once; each owns a disjoint share of the sessions, so that each session has one. */
  writers: number;
  /** Words per message (default 8). */
  words?: number;
  /** Read the session's context after every n-th write (0: never; default 0). */
  readEvery?: number;
  /** Pause after each write, in ms (default 0). */
  pauseMs?: number;
  write?: WriteOptions;
  /** Stop after this many writes in all (default: until `stop()`). */
  maxWrites?: number;
}

/**
 * Steady traffic until stopped: `writers` loops, each writing in turn to its own sessions (one
 * writer per session, so a session's acknowledgement order is its send order).
 */
export function startTraffic(
  client: Client,
  sessions: readonly string[],
  log: WriteLog,
  options: TrafficOptions,
  reads?: ReadLog,
) {
  let running = true;
  let writes = 0;
  const writers = Math.min(options.writers, sessions.length);
  const loops = Array.from({ length: writers }, async (_, w) => {
    const own = sessions.filter((_, index) => index % writers === w);
    let turn = 0;
    while (running && (options.maxWrites === undefined || writes < options.maxWrites)) {
      const session = own[turn++ % own.length]!;
      writes++;
      await log.write(client, session, log.message(options.words ?? 8), options.write ?? {});
      if (reads && options.readEvery && turn % options.readEvery === 0) await reads.read(client, session);
      // Yield to the event loop, so that timers (probes, the test's own steps) run under load.
      await sleep(options.pauseMs ?? 0);
    }
  });
  const done = Promise.all(loops);
  return {
    get writes() {
      return writes;
    },
    async stop(): Promise<void> {
      running = false;
      await done;
    },
    done,
  };
}

import type { SessionKeys } from "../../buffer/keys.js";
import { LuaScript } from "../../storage/lua-script.js";
import type { RedisConnection } from "../../storage/redis-client.js";

const script = new LuaScript(new URL("./acquire-lease-2.lua", import.meta.url));

export interface AcquireLeaseInput {
  /** Identifies the process in the lease's value. */
  holderId: string;
  leaseMs: number;
  /** The highest fencing token committed so far: the new token is above it. */
  floor: number;
  /** Seconds the fencing counter lives. */
  counterTtlSeconds: number;
}

/** "acquired" with its fencing token, or "held" by another holder for `remainingMs` more. */
export type AcquireLeaseReply =
  | { status: "acquired"; token: number }
  | { status: "held"; remainingMs: number };

/** Takes the session's summarizer lease with a new fencing token if nobody holds it. */
export async function acquireLease(
  redis: RedisConnection,
  keys: SessionKeys,
  input: AcquireLeaseInput,
): Promise<AcquireLeaseReply> {
  const read = await script.run(
    redis,
    [keys.lease, keys.fence],
    [input.holderId, String(input.leaseMs), String(input.floor), String(input.counterTtlSeconds)],
  );
  const [tokenItem, remainingItem] = read.tuple(2);
  const token = read.integer(tokenItem, "token");
  // Tokens start at 1: 0 says someone else holds the lease.
  if (token > 0) return { status: "acquired", token };
  return { status: "held", remainingMs: read.integer(remainingItem, "remaining ms") };
}

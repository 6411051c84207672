import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { RedisConnection } from "../storage/redis-client.js";

const LUA_DIR = new URL("./lua/", import.meta.url);
const INCLUDE_LINE = /^--\s*@include\s+"([^"]+)"\s*$/gm;

/**
 * One atomic Redis operation, loaded from `lua/<name>-<keys>.lua`. Called by SHA (EVALSHA) and
 * sent as source (EVAL) once when the server does not know it yet (NOSCRIPT: after a restart, a
 * failover or SCRIPT FLUSH). The key count is part of the file name, as in bullmq.
 */
export class LuaScript {
  readonly name: string;
  readonly numberOfKeys: number;
  readonly source: string;
  readonly sha1: string;

  constructor(fileName: string) {
    const match = /^(.+)-(\d+)\.lua$/.exec(fileName);
    if (!match) throw new Error(`Lua script file name must be <name>-<keys>.lua: ${fileName}`);
    this.name = match[1]!;
    this.numberOfKeys = Number(match[2]);
    this.source = resolveIncludes(readFileSync(new URL(fileName, LUA_DIR), "utf8"));
    this.sha1 = createHash("sha1").update(this.source).digest("hex");
  }

  // EVALSHA rather than EVALSHA_RO: the read-only variants need Redis 7, and Redis 6.2 is supported.
  async run(redis: RedisConnection, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    if (keys.length !== this.numberOfKeys) {
      throw new Error(`${this.name} takes ${this.numberOfKeys} keys, got ${keys.length}`);
    }
    const tail = [String(keys.length), ...keys, ...args];
    const route = { key: keys[0] };
    try {
      return await redis.send(["EVALSHA", this.sha1, ...tail], route);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      return redis.send(["EVAL", this.source, ...tail], route);
    }
  }
}

function resolveIncludes(source: string): string {
  return source.replace(INCLUDE_LINE, (_line, path: string) => readFileSync(new URL(path, LUA_DIR), "utf8"));
}

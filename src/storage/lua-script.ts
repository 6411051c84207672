import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { RedisConnection } from "./redis-client.js";
import { ReplyReader } from "./redis-reply.js";

const INCLUDE_LINE = /^--\s*@include\s+"([^"]+)"\s*$/gm;

/**
 * One atomic Redis operation, loaded from a `<name>-<keys>.lua` file (includes resolved relative
 * to it). Called by SHA (EVALSHA) and sent as source (EVAL) once when the server does not know it
 * yet (NOSCRIPT: after a restart, a failover or SCRIPT FLUSH). The key count is part of the file
 * name, as in bullmq. Each script has one typed wrapper beside it that builds its KEYS and ARGV
 * and reads its reply; only those wrappers run scripts.
 */
export class LuaScript {
  /** The file's name (`append-5.lua`), which names the script in errors. */
  readonly file: string;
  readonly name: string;
  readonly numberOfKeys: number;
  readonly source: string;
  readonly sha1: string;

  /** `file`: the script's URL, e.g. `new URL("./lua/append-3.lua", import.meta.url)`. */
  constructor(file: URL) {
    const fileName = file.pathname.split("/").at(-1) ?? "";
    const [, name, keys] = /^(.+)-(\d+)\.lua$/.exec(fileName) ?? [];
    if (name === undefined) throw new Error(`Lua script file name must be <name>-<keys>.lua: ${fileName}`);
    this.file = fileName;
    this.name = name;
    this.numberOfKeys = Number(keys);
    this.source = resolveIncludes(readFileSync(file, "utf8"), file);
    this.sha1 = createHash("sha1").update(this.source).digest("hex");
  }

  /**
   * Runs the script; its wrapper reads the reply. `readonly` sends it as EVALSHA_RO (Redis 7),
   * which a connection may route to a replica; otherwise EVALSHA, which Redis 6.2 has too.
   */
  async run(
    redis: RedisConnection,
    keys: readonly string[],
    args: readonly string[],
    { readonly = false } = {},
  ): Promise<ReplyReader> {
    return new ReplyReader(this.file, await this.#send(redis, keys, args, readonly));
  }

  async #send(
    redis: RedisConnection,
    keys: readonly string[],
    args: readonly string[],
    readonly: boolean,
  ): Promise<unknown> {
    if (keys.length !== this.numberOfKeys) {
      throw new Error(`${this.name} takes ${this.numberOfKeys} keys, got ${keys.length}`);
    }
    const tail = [String(keys.length), ...keys, ...args];
    const route = { key: keys[0], readonly };
    try {
      return await redis.send([readonly ? "EVALSHA_RO" : "EVALSHA", this.sha1, ...tail], route);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      return redis.send([readonly ? "EVAL_RO" : "EVAL", this.source, ...tail], route);
    }
  }
}

function resolveIncludes(source: string, file: URL): string {
  return source.replace(INCLUDE_LINE, (_line, path: string) => readFileSync(new URL(path, file), "utf8"));
}

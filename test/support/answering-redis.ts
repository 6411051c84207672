import type { RedisConnection } from "../../src/storage/redis-client.js";

/** A RedisConnection without a server: it answers every command with `reply` and records them. */
export interface AnsweringRedis extends RedisConnection {
  readonly sent: (readonly string[])[];
}

/** For the script wrappers' reply parsers: what a server of another version might answer. */
export function answeringRedis(reply: unknown): AnsweringRedis {
  const sent: (readonly string[])[] = [];
  return {
    sent,
    isReady: true,
    send: async (args) => {
      sent.push(args);
      return reply;
    },
    info: async () => [],
    scanKeys: async () => [],
    onReconnect: () => {},
    close: async () => {},
  };
}

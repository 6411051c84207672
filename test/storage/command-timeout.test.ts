import { expect, it } from "vitest";
import { isRedisOutage } from "../../src/resilience/guarded-connections.js";
import { errorCode } from "../../src/resilience/transition-log.js";
import { connectRedis, RedisCommandTimeoutError } from "../../src/storage/redis-client.js";
import { RedisServerProcess } from "../support/processes.js";
import { describeWithRedis } from "../support/servers.js";

// node-redis's own command timeout is off (it only bounds the wait to be written, and costs more
// than ours: bench/redis-timeout.bench.ts), so the connection's timer alone must catch a server
// that stops answering without closing its connections. Owns its redis-server: it pauses it.

describeWithRedis("Redis command timeout", () => {
  it("fails a command against a paused server within the timeout, as an outage named ETIMEDOUT", async () => {
    const server = await RedisServerProcess.start();
    const redis = await connectRedis({ url: server.url, commandTimeoutMs: 300 });
    try {
      server.pause();
      const started = Date.now();
      const error = await redis.send(["PING"]).catch((caught: unknown) => caught);
      expect(Date.now() - started).toBeLessThan(1500);
      expect(error).toBeInstanceOf(RedisCommandTimeoutError);
      expect(errorCode(error)).toBe("ETIMEDOUT");
      expect(isRedisOutage(error)).toBe(true);
      server.resume();
      expect(await redis.send(["PING"])).toBe("PONG");
    } finally {
      await redis.close();
      await server.stop();
    }
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sessionTag } from "../../src/buffer/keys.js";
import { connectRedisFromEnv } from "../../src/manager/connections.js";
import type { MemoryManagerOptions } from "../../src/manager/create-memory-manager.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { CircuitState } from "../../src/resilience/index.js";
import { createMemoryService } from "../../src/service/index.js";
import { connectRedis } from "../../src/storage/redis-client.js";
import { rendezvousShard } from "../../src/storage/redis-shards.js";
import { RedisServerProcess } from "../support/processes.js";
import { FAST_RESILIENCE, FaultServers, until } from "./support/environment.js";
import { differencesFromSystemOfRecord } from "./support/invariants.js";

// Sessions sharded over standalone Redis servers of the test's own (REDIS_URLS). A dead shard
// sends only its own sessions to PostgreSQL; the shard list changes in both directions, moving
// about 1/N of the sessions each time; and a session that moves back to a shard still holding its
// old keys is never served from them. Every context ends equal to the system of record's.

interface HealthBody {
  status: string;
  components: Record<string, { status: string }>;
}

const name = (server: RedisServerProcess) => `127.0.0.1:${server.port}`;
const homeOf = (session: string, shards: RedisServerProcess[]) =>
  rendezvousShard(sessionTag({ tenant: "default", sessionId: session }), shards.map(name));

describe("Redis shards (REDIS_URLS)", () => {
  let servers: FaultServers;
  let shards: RedisServerProcess[];
  let spare: RedisServerProcess;

  beforeAll(async () => {
    servers = await FaultServers.start();
    [spare, ...shards] = await Promise.all(Array.from({ length: 4 }, () => RedisServerProcess.start()));
  });
  afterAll(async () => {
    for (const shard of [...(shards ?? []), spare]) await shard?.stop();
    await servers?.stop();
  });

  function openOn(
    list: RedisServerProcess[],
    keyPrefix: string,
    options: Partial<MemoryManagerOptions> = {},
  ): Promise<MemoryManager> {
    return servers.openManager({
      redis: undefined,
      keyPrefix,
      env: { REDIS_URLS: list.map((shard) => shard.url).join(",") },
      ...options,
    });
  }

  async function write(memory: MemoryManager, sessions: string[], label: string): Promise<void> {
    for (const session of sessions) {
      await memory.addMessage(session, { role: "user", content: `${label}: a light laptop for ${session}` });
      await memory.addMessage(session, { role: "assistant", content: `${label}: here are three` });
    }
  }

  const breakerOf = (memory: MemoryManager, shard: RedisServerProcess) =>
    memory.breakerSnapshots().find((snapshot) => snapshot.name === `redis:${name(shard)}`);

  it("a dead shard sends only its own sessions to PostgreSQL, and serves them again once back", async () => {
    const sessions = Array.from({ length: 60 }, (_, index) => `dead-${index}`);
    // The dead shard's breaker stays open until the shard answers again (its recovery probe then
    // closes it), so the checks below see it open however long the reads take on a slow machine.
    const memory = await openOn(shards, "dead", {
      resilience: { ...FAST_RESILIENCE, recoveryTimeoutMs: 600_000 },
    });
    await write(memory, sessions, "before");
    const perShard = shards.map((shard) => sessions.filter((s) => homeOf(s, shards) === name(shard)));
    for (const own of perShard) expect(own.length).toBeGreaterThan(8);

    const [, victim] = shards as [RedisServerProcess, RedisServerProcess];
    await victim.kill();
    try {
      await write(memory, sessions, "during");
      await until(
        () => breakerOf(memory, victim)?.state === CircuitState.OPEN,
        "the dead shard's breaker opens",
      );
      for (const session of sessions) {
        const context = await memory.getContext(session);
        const onVictim = homeOf(session, shards) === name(victim);
        expect(context.buffer_info.source, session).toBe(onVictim ? "database" : "redis");
        expect(context.message_count, session).toBe(4);
      }
      const health = memory.assessHealth();
      expect(health.components[`redis:${name(victim)}`]).toBe("down");
      expect(health.components[`redis:${name(shards[0] as RedisServerProcess)}`]).toBe("up");
      expect(health).toMatchObject({ status: "degraded", canAcknowledgeWrites: true });
    } finally {
      // Restarted even when a check failed, so the other tests find every shard up.
      await victim.restart();
    }
    await until(() => breakerOf(memory, victim)?.state === CircuitState.CLOSED, "the shard's breaker closes");
    await write(memory, sessions, "after");
    expect(await differencesFromSystemOfRecord(memory, servers.postgres.url, sessions)).toEqual([]);
  });

  it("serves over HTTP as `serve` wires it: one /health entry per shard, and a dead one degraded", async () => {
    const env = { REDIS_URLS: shards.map((shard) => shard.url).join(",") };
    const redis = await connectRedisFromEnv(env);
    if (!redis) throw new Error("REDIS_URLS named no connection");
    const memory = await servers.openManager({ redis, keyPrefix: "http" });
    let killed: RedisServerProcess | undefined;
    const app = await createMemoryService({ memory, redis, keyPrefix: "http", rateLimitPerMinute: 10 });
    try {
      const post = await app.inject({
        method: "POST",
        url: "/v1/sessions/http-1/messages",
        payload: { role: "user", content: "hello" },
      });
      expect(post.statusCode).toBe(201);
      const up = (await app.inject({ method: "GET", url: "/health" })).json() as HealthBody;
      expect(
        Object.keys(up.components)
          .filter((name) => name.startsWith("redis"))
          .sort(),
      ).toEqual(shards.map((shard) => `redis:${name(shard)}`).sort());
      expect(up.status).toBe("up");
      const victim = shards[2] as RedisServerProcess;
      killed = victim;
      await victim.kill();
      // Its PING fails at once (degraded); its breaker opens (down) once its sessions' commands fail.
      await until(async () => {
        const report = (await app.inject({ method: "GET", url: "/health" })).json() as HealthBody;
        return report.components[`redis:${name(victim)}`]?.status !== "up";
      }, "/health reports the dead shard");
      const down = (await app.inject({ method: "GET", url: "/health" })).json() as HealthBody;
      expect(down.status).toBe("degraded");
      expect(down.components[`redis:${name(shards[0] as RedisServerProcess)}`]?.status).toBe("up");
    } finally {
      await killed?.restart();
      await app.close();
      await memory.close();
      await redis.close();
    }
  });

  it("moves about 1/N of the sessions when the list changes, and never serves a moved-back session's old keys", async () => {
    const sessions = Array.from({ length: 120 }, (_, index) => `move-${index}`);
    const first = await openOn(shards, "move");
    await write(first, sessions, "first");
    for (const session of sessions) await first.getContext(session);
    await first.close();

    const grown = [...shards, spare];
    const moved = sessions.filter((s) => homeOf(s, shards) !== homeOf(s, grown));
    expect(moved.length / sessions.length).toBeGreaterThan(0.12);
    expect(moved.length / sessions.length).toBeLessThan(0.4);
    for (const session of moved) expect(homeOf(session, grown)).toBe(name(spare));

    const second = await openOn(grown, "move");
    await write(second, sessions, "second");
    expect(await differencesFromSystemOfRecord(second, servers.postgres.url, sessions)).toEqual([]);
    await second.close();

    // Back to three shards: the moved sessions' first shards still hold their first two messages.
    const first0 = moved[0] as string;
    const oldShard = shards.find((shard) => name(shard) === homeOf(first0, shards)) as RedisServerProcess;
    const raw = await connectRedis({ url: oldShard.url });
    try {
      const stale = await raw.scanKeys(`move:*{default:${first0}}:buf`);
      expect(stale.length, "the old shard still holds the moved session's buffer").toBeGreaterThan(0);
    } finally {
      await raw.close();
    }
    const third = await openOn(shards, "move");
    expect(await differencesFromSystemOfRecord(third, servers.postgres.url, sessions)).toEqual([]);
    for (const session of sessions) expect((await third.getContext(session)).message_count).toBe(4);
  });
});

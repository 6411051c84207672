import { describe, expect, it } from "vitest";
import {
  adviseOnRedisSettings,
  describeRedisMemory,
  formatBytes,
  type RedisSettings,
  readRedisSettings,
} from "../../src/storage/redis-settings.js";
import { describeWithRedis, useTestServers } from "../support/servers.js";

const GB = 1024 ** 3;

function settings(overrides: Partial<RedisSettings>): RedisSettings {
  return {
    maxmemory: 4 * GB,
    maxmemory_policy: "allkeys-lru",
    appendonly: "no",
    save: "900 1 300 10",
    keys_without_ttl: 0,
    source: "CONFIG GET",
    config_refused: null,
    ...overrides,
  };
}

describe("what Redis's memory settings mean here", () => {
  it("the specification's settings are information", () => {
    const advice = adviseOnRedisSettings(settings({}));
    expect(advice).toEqual({
      level: "info",
      message: "Redis evicts with allkeys-lru at maxmemory 4gb: an evicted buffer is rebuilt from PostgreSQL",
    });
  });

  it("warns on noeviction with a limit, saying writes go to PostgreSQL and nothing is lost", () => {
    const advice = adviseOnRedisSettings(
      settings({ maxmemory_policy: "noeviction", maxmemory: 512 * 1024 ** 2 }),
    );
    expect(advice.level).toBe("warn");
    expect(advice.message).toContain("noeviction with maxmemory 512mb");
    expect(advice.message).toContain("Nothing is lost");
    expect(advice.message).toContain("circuit breaker opens");
  });

  it("noeviction without a limit never refuses a write: information", () => {
    const advice = adviseOnRedisSettings(settings({ maxmemory_policy: "noeviction", maxmemory: 0 }));
    expect(advice.level).toBe("info");
    expect(advice.message).toContain("no maxmemory");
  });

  it("warns on a volatile policy only when keys without a TTL could fill Redis", () => {
    const evictable = adviseOnRedisSettings(settings({ maxmemory_policy: "volatile-lru" }));
    expect(evictable.level).toBe("info");
    expect(evictable.message).toContain("every buffer key has a TTL");
    const stuck = adviseOnRedisSettings(settings({ maxmemory_policy: "volatile-ttl", keys_without_ttl: 42 }));
    expect(stuck.level).toBe("warn");
    expect(stuck.message).toContain("42 keys without a TTL");
    expect(stuck.message).toContain("as under noeviction");
  });

  it("writes sizes as redis.conf does, and one line for inspect", () => {
    expect([formatBytes(4 * GB), formatBytes(1024 ** 2), formatBytes(3 * 1024), formatBytes(1500)]).toEqual([
      "4gb",
      "1mb",
      "3kb",
      "1500b",
    ]);
    expect(describeRedisMemory(0, "noeviction")).toBe(
      "no maxmemory (maxmemory-policy noeviction never applies)",
    );
    expect(describeRedisMemory(GB, "allkeys-lru")).toBe(
      "maxmemory 1gb, maxmemory-policy allkeys-lru (an evicted buffer is rebuilt from PostgreSQL)",
    );
  });
});

describeWithRedis("reading the settings", () => {
  const servers = useTestServers();

  it("reads all four by CONFIG GET", async () => {
    const found = await readRedisSettings(servers.redis!.redis);
    expect(found.source).toBe("CONFIG GET");
    expect(found.config_refused).toBeNull();
    expect(Number.isInteger(found.maxmemory)).toBe(true);
    expect(found.maxmemory_policy).toMatch(/^(noeviction|allkeys-|volatile-)/);
    expect(["yes", "no"]).toContain(found.appendonly);
    expect(typeof found.save).toBe("string");
    expect(found.keys_without_ttl).toBeGreaterThanOrEqual(0);
  });
});

import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/errors.js";
import { createMemoryManager } from "../../src/manager/create-memory-manager.js";
import { epochOfKey, hashTagOf, rendezvousShard, ShardMap } from "../../src/storage/redis-shards.js";
import { recordingLogger } from "../support/fixtures.js";

// Rendezvous placement and the epochs in key names (the shards themselves: test/faults/redis-shards.test.ts).

const tags = Array.from({ length: 4000 }, (_, index) => `default:session-${index}`);
const FOUR = ["a:6379", "b:6379", "c:6379", "d:6379"];

describe("rendezvous placement over Redis shards", () => {
  it("spreads sessions evenly and moves only about 1/N when a shard is added", () => {
    const counts = new Map<string, number>();
    for (const tag of tags) {
      const shard = rendezvousShard(tag, FOUR);
      counts.set(shard, (counts.get(shard) ?? 0) + 1);
    }
    for (const shard of FOUR) expect(counts.get(shard)).toBeGreaterThan(tags.length / 4 - 150);
    const five = [...FOUR, "e:6379"];
    const moved = tags.filter((tag) => rendezvousShard(tag, FOUR) !== rendezvousShard(tag, five));
    expect(moved.length / tags.length).toBeGreaterThan(0.15);
    expect(moved.length / tags.length).toBeLessThan(0.25);
    // A session only ever moves to the new shard, and removing one moves only that one's sessions.
    for (const tag of moved) expect(rendezvousShard(tag, five)).toBe("e:6379");
    const three = FOUR.filter((shard) => shard !== "b:6379");
    for (const tag of tags) {
      if (rendezvousShard(tag, FOUR) !== "b:6379") {
        expect(rendezvousShard(tag, three)).toBe(rendezvousShard(tag, FOUR));
      }
    }
  });

  it("names in a key the first epoch of the session's unbroken stay on its shard", () => {
    const map = new ShardMap(FOUR.slice(0, 3));
    map.adopt([
      { epoch: 1, shards: FOUR.slice(0, 3) },
      { epoch: 2, shards: FOUR },
      { epoch: 3, shards: FOUR.slice(0, 3) },
    ]);
    const movedAway = tags.find((tag) => rendezvousShard(tag, FOUR) === "d:6379") as string;
    const stayed = tags.find((tag) => rendezvousShard(tag, FOUR) === "a:6379") as string;
    expect(map.runStart(movedAway)).toBe(3);
    expect(map.runStart(stayed)).toBe(1);
    // A key routes by the epoch it names: an epoch-2 key of the moved session lives on d.
    expect(map.homeOf(movedAway, 2)).toBe("d:6379");
    expect(map.homeOf(movedAway)).not.toBe("d:6379");
    expect(epochOfKey("mem:e2:{default:s}:buf")).toBe(2);
    expect(epochOfKey("mem:{default:s}:buf")).toBeNull();
    expect(hashTagOf("mem:e2:{default:s}:buf")).toBe("default:s");
    expect(hashTagOf("mem:ratelimit:{key:abc}")).toBe("key:abc");
  });

  it("refuses REDIS_URLS together with REDIS_URL, naming both", async () => {
    const opening = createMemoryManager({
      env: { REDIS_URLS: "redis://127.0.0.1:1,redis://127.0.0.1:2", REDIS_URL: "redis://127.0.0.1:3" },
      database: "postgres://postgres@127.0.0.1:1/none",
      autoMigrate: false,
      logger: recordingLogger(),
    });
    await expect(opening).rejects.toBeInstanceOf(ValidationError);
    await expect(opening).rejects.toMatchObject({
      field: "REDIS_URLS",
      message: expect.stringContaining("REDIS_URL"),
    });
  });
});

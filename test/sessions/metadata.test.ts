import { afterAll, beforeAll, expect, it } from "vitest";
import { ValidationError } from "../../src/errors.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { uniqueName, useTestServers } from "../support/servers.js";
import { inEveryDatabase, type Opener } from "./deployments.js";

const servers = useTestServers();

function metadataSuite(open: Opener): void {
  let memory: MemoryManager;
  let close: () => Promise<void>;
  beforeAll(async () => {
    const opened = await open();
    memory = opened.memory.forTenant(uniqueName("meta"));
    close = opened.close;
  });
  afterAll(async () => {
    await close();
  });

  it("sets and clears title, user and metadata; keys left out keep their values", async () => {
    expect(await memory.getSession("s")).toBeNull();
    expect(await memory.updateSession("s", { title: "Before any message" })).toBeNull();
    await memory.addMessage("s", { role: "user", content: "Which laptop is lightest?" });
    expect(await memory.getSession("s")).toMatchObject({
      title: "Which laptop is lightest?",
      user_id: null,
      metadata: {},
      message_count: 1,
    });
    const updated = await memory.updateSession("s", {
      title: "Laptops",
      user_id: "u-1",
      metadata: { channel: "web", nested: { a: [1, 2] } },
    });
    expect(updated).toMatchObject({
      title: "Laptops",
      user_id: "u-1",
      metadata: { channel: "web", nested: { a: [1, 2] } },
    });
    expect(await memory.updateSession("s", { metadata: { channel: "app" } })).toMatchObject({
      title: "Laptops",
      user_id: "u-1",
      metadata: { channel: "app" },
    });
    expect(await memory.updateSession("s", { title: null, user_id: null })).toMatchObject({
      title: "Which laptop is lightest?",
      user_id: null,
      metadata: { channel: "app" },
    });
    const listed = await memory.listSessions({ user_id: "u-1" });
    expect(listed.sessions).toEqual([]);
  });

  it("takes user_id with the first message; a later write does not change it", async () => {
    await memory.addMessages("w", [{ role: "user", content: "hi" }], { user_id: "u-2" });
    await memory.addMessages("w", [{ role: "user", content: "again" }], { user_id: "u-3" });
    await memory.addMessages("x", { role: "user", content: "other" }, { user_id: "u-2" });
    expect((await memory.getSession("w"))?.user_id).toBe("u-2");
    const mine = await memory.listSessions({ user_id: "u-2", order: "created_desc" });
    expect(mine.sessions.map((session) => session.session_id)).toEqual(["x", "w"]);
    // Another tenant's user of the same id is another user.
    expect((await memory.forTenant(uniqueName("other")).listSessions({ user_id: "u-2" })).sessions).toEqual(
      [],
    );
  });

  it("refuses bad input, naming the field, and changes nothing", async () => {
    await memory.addMessage("v", { role: "user", content: "hello" });
    const bad = async (patch: unknown, field: string) => {
      const error = await memory.updateSession("v", patch as never).catch((caught: unknown) => caught);
      expect(error, JSON.stringify(patch)?.slice(0, 80)).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe(field);
    };
    await bad({ title: "" }, "title");
    await bad({ title: "x".repeat(257) }, "title");
    await bad({ title: "two\nlines" }, "title");
    await bad({ user_id: "" }, "user_id");
    await bad({ metadata: [1, 2] }, "metadata");
    await bad({ metadata: "text" }, "metadata");
    await bad({ metadata: { big: "x".repeat(16 * 1024) } }, "metadata");
    await bad({ metadata: { nul: "a\u0000b" } }, "metadata");
    await bad({ colour: "red" }, "colour");
    const error = await memory
      .addMessages("v", { role: "user", content: "x" }, { user_id: "" })
      .catch((caught: unknown) => caught);
    expect((error as ValidationError).field).toBe("user_id");
    expect(await memory.getSession("v")).toMatchObject({
      title: "hello",
      user_id: null,
      metadata: {},
      message_count: 1,
    });
    // Just under the limit is taken.
    const fits = { big: "x".repeat(16 * 1024 - 20) };
    expect((await memory.updateSession("v", { metadata: fits }))?.metadata).toEqual(fits);
  });
}

inEveryDatabase("updateSession", servers, metadataSuite);

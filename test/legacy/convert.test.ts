import { describe, expect, it } from "vitest";
import { convertContext, convertElement, legacyMessageId } from "../../src/legacy/convert.js";
import { localIsoToEpochSeconds } from "../../src/legacy/local-time.js";
import { compareMessages } from "../../src/legacy/verify.js";

describe("legacy local times", () => {
  it("reads ISO local time without zone in the given zone, across a DST change", () => {
    expect(localIsoToEpochSeconds("2025-06-03T14:07:55.123456", "UTC")).toBeCloseTo(
      Date.UTC(2025, 5, 3, 14, 7, 55) / 1000 + 0.123456,
      5,
    );
    // Summer (UTC+2) and winter (UTC+1) in Zurich.
    expect(localIsoToEpochSeconds("2025-06-03T14:00:00", "Europe/Zurich")).toBe(
      Date.UTC(2025, 5, 3, 12) / 1000,
    );
    expect(localIsoToEpochSeconds("2025-01-03T14:00:00", "Europe/Zurich")).toBe(
      Date.UTC(2025, 0, 3, 13) / 1000,
    );
    expect(localIsoToEpochSeconds("2025-03-30T03:30:00", "Europe/Zurich")).toBe(
      Date.UTC(2025, 2, 30, 1, 30) / 1000,
    );
    expect(localIsoToEpochSeconds("yesterday", "UTC")).toBeNull();
  });
});

describe("legacy elements", () => {
  it("gives the same element at the same place the same id, and any change another", () => {
    const element = { role: "user", content: "hi", timestamp: "2025-06-03T14:07:55.123456" };
    const id = legacyMessageId("s", 0, element);
    expect(id).toMatch(/^legacy:[0-9a-f]{32}$/);
    expect(legacyMessageId("s", 0, { timestamp: element.timestamp, content: "hi", role: "user" })).toBe(id);
    expect(legacyMessageId("s", 1, element)).not.toBe(id);
    expect(legacyMessageId("t", 0, element)).not.toBe(id);
    expect(legacyMessageId("s", 0, { ...element, content: "hi!" })).not.toBe(id);
  });

  it("skips what is not a message with the reason, keeps empty content and unknown keys", () => {
    const convert = (element: unknown) => convertElement("s", 0, element, "UTC", 100);
    expect(convert({ content: "x" })).toEqual({ ok: false, reason: "no role" });
    expect(convert({ role: "bot", content: "x" })).toEqual({ ok: false, reason: "unknown role" });
    expect(convert({ role: "user", content: ["x"] })).toEqual({ ok: false, reason: "non-string content" });
    expect(convert(null)).toEqual({ ok: false, reason: "not an object" });
    const converted = convert({ role: "user", content: "", name: "n", timestamp: "garbled" });
    expect(converted).toMatchObject({
      ok: true,
      message: {
        role: "user",
        content: "",
        timestamp: 100,
        metadata: { name: "n", legacy_timestamp: "garbled" },
      },
    });
  });

  it("keeps the contract template and names the session in the context", () => {
    const context = convertContext("s", {
      contract_context: {
        session_id: "other",
        contract_template: "contracts/x.yaml",
        current_state: "search",
      },
    });
    expect(context).toEqual({
      session_id: "s",
      legacy_session_id: "other",
      contract_template: "contracts/x.yaml",
      current_state: "search",
    });
    expect(convertContext("s", { contract_context: null })).toBeNull();
  });
});

describe("compareMessages", () => {
  const m = (content: string, role = "user") => ({ role, content });
  const kinds = (expected: ReturnType<typeof m>[], stored: ReturnType<typeof m>[]) =>
    compareMessages(expected, stored).map((divergence) => divergence.kind);

  it("names each kind of divergence", () => {
    expect(kinds([m("a"), m("b")], [m("a"), m("b")])).toEqual([]);
    expect(kinds([m("a"), m("b"), m("c")], [m("a"), m("c")])).toEqual(["message count", "missing message"]);
    expect(kinds([m("a"), m("c")], [m("a"), m("b"), m("c")])).toEqual(["message count", "extra message"]);
    expect(kinds([m("a"), m("b")], [m("a"), m("B")])).toEqual(["different content"]);
    expect(kinds([m("a"), m("b")], [m("a"), m("b", "assistant")])).toEqual(["different content"]);
    expect(kinds([m("a"), m("b")], [m("b"), m("a")])).toEqual(["different order"]);
  });
});

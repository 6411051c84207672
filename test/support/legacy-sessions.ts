import type { Queryable } from "../../src/storage/database.js";

/** A `swisper_sessions` row to insert, as the legacy code (and worse) leaves them. */
export interface GeneratedLegacySession {
  sessionId: string;
  createdAt: string;
  chatHistory: unknown[];
  sessionMetadata: Record<string, unknown>;
  /** The valid elements' role and content, in order: what the transcript must hold. */
  expected: { role: string; content: string }[];
  /** How many elements are not valid messages, by the reason the import gives. */
  invalid: Record<string, number>;
}

export interface GenerateOptions {
  sessions: number;
  /** Elements of session i (0-based). */
  length: (index: number) => number;
  /** Mix in elements the import must skip or handle specially (default false). */
  hostile?: boolean;
  /** Session id prefix (default "legacy"). */
  prefix?: string;
}

const TEXTS = [
  "Ich suche einen Laptop unter 1500 Franken",
  "Voici trois modèles qui correspondent",
  "日本語のテキストも保存されます",
  "Привет, какой у вас бюджет?",
  "مرحبا، هل تريد المقارنة؟",
  "Emoji too 🙂🚀 and combining é",
  "",
];

/** A deterministic pseudo-random stream, so that a failing run can be repeated exactly. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function isoLocal(epochMs: number): string {
  return `${new Date(epochMs).toISOString().slice(0, 23)}456`;
}

/** One element, hostile or not; returns it with the reason it is invalid, or null when valid. */
function element(
  index: number,
  next: () => number,
  hostile: boolean,
  clock: number,
): [unknown, string | null] {
  const role = index % 2 === 0 ? "user" : "assistant";
  const content = `${TEXTS[Math.floor(next() * TEXTS.length)]} #${index}`;
  const base = { role, content, timestamp: isoLocal(clock) };
  if (!hostile) return [base, null];
  const roll = next();
  if (roll < 0.03) return [{ role, content: 42, timestamp: base.timestamp }, "non-string content"];
  if (roll < 0.05) return [{ content, timestamp: base.timestamp }, "no role"];
  if (roll < 0.07) return [{ ...base, role: "bot" }, "unknown role"];
  if (roll < 0.1) return [{ role, content: "" }, null];
  if (roll < 0.13) return [{ role, content }, null];
  if (roll < 0.16) return [{ ...base, name: "swisper", metadata: { source: "web" }, extra: [1, 2] }, null];
  if (roll < 0.17) return ["just a string", "not an object"];
  return [base, null];
}

/** Sessions with histories of the given lengths; times advance 7 s a message from 2025-06-03. */
export function generateLegacySessions(options: GenerateOptions): GeneratedLegacySession[] {
  const next = random(options.sessions * 7919 + 1);
  const prefix = options.prefix ?? "legacy";
  const sessions: GeneratedLegacySession[] = [];
  for (let s = 0; s < options.sessions; s++) {
    let clock = Date.UTC(2025, 5, 3, 14, 7, 55) + s * 60_000;
    const session: GeneratedLegacySession = {
      sessionId: `${prefix}-${String(s).padStart(5, "0")}`,
      createdAt: isoLocal(clock),
      chatHistory: [],
      sessionMetadata: {},
      expected: [],
      invalid: {},
    };
    for (let index = 0; index < options.length(s); index++) {
      clock += 7000;
      const [value, reason] = element(index, next, options.hostile === true, clock);
      session.chatHistory.push(value);
      if (reason === null) {
        const valid = value as { role: string; content: string };
        session.expected.push({ role: valid.role, content: valid.content });
      } else {
        session.invalid[reason] = (session.invalid[reason] ?? 0) + 1;
      }
    }
    if (s % 3 === 0) {
      session.sessionMetadata = {
        contract_context: {
          session_id: session.sessionId,
          current_state: "search",
          product_query: "laptop",
          preferences: { budget_chf: 1500 },
          contract_template: "contracts/laptop.yaml",
        },
        pending_confirmation_product: null,
      };
    }
    sessions.push(session);
  }
  return sessions;
}

/** Inserts the sessions into an existing `swisper_sessions` table, 100 rows a statement. */
export async function insertLegacySessions(
  db: Queryable,
  sessions: readonly GeneratedLegacySession[],
): Promise<void> {
  for (let start = 0; start < sessions.length; start += 100) {
    const page = sessions.slice(start, start + 100);
    await db.query(
      `INSERT INTO swisper_sessions (session_id, created_at, updated_at, message_count, chat_history, session_metadata)
       SELECT id, created, created, jsonb_array_length(history), history, metadata
       FROM unnest($1::varchar[], $2::timestamp[], $3::jsonb[], $4::jsonb[]) AS t(id, created, history, metadata)`,
      [
        page.map((session) => session.sessionId),
        page.map((session) => session.createdAt),
        page.map((session) => JSON.stringify(session.chatHistory)),
        page.map((session) => JSON.stringify(session.sessionMetadata)),
      ],
    );
  }
}

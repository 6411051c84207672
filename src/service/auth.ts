import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { ValidationError } from "../errors.js";
import { validateTenant } from "../messages/validate.js";

/** Shortest API key accepted: 16 characters (`openssl rand -hex 32` gives 64). */
export const MIN_API_KEY_LENGTH = 16;
const KEY_CHARACTERS = /^[\x21-\x7e]+$/;

/** Who a request is: the tenant its key is bound to, and a non-secret id of the key. */
export interface Principal {
  tenant: string;
  /** First 12 hex digits of the key's SHA-256: safe to log and to key rate limits by. */
  keyId: string;
}

interface KeyEntry {
  digest: Buffer;
  principal: Principal;
}

/**
 * API keys bound to tenants. Presented keys are hashed and compared with every configured key in
 * constant time (`timingSafeEqual` on SHA-256 digests, no early exit), so neither a key's
 * content nor its position leaks through timing.
 */
export class ApiKeyring {
  readonly #entries: KeyEntry[];
  /**
   * Presented keys that matched, by their text: a client sends the same key on every request, and
   * hashing it each time was about 1% of a request's CPU (bench:http profile). Only configured
   * keys can enter, so it holds at most one entry a key; a key that matches nothing is hashed and
   * compared with every entry as before.
   */
  readonly #matched = new Map<string, Principal>();

  private constructor(entries: KeyEntry[]) {
    this.#entries = entries;
  }

  /** A keyring from `tenant:key` pairs. Throws a ValidationError naming the bad entry. */
  static fromPairs(
    pairs: readonly { tenant: string; key: string }[],
    source = "MEMORY_API_KEYS",
  ): ApiKeyring {
    const entries: KeyEntry[] = [];
    const seen = new Set<string>();
    for (const [index, { tenant, key }] of pairs.entries()) {
      const field = `${source}[${index}]`;
      try {
        validateTenant(tenant);
      } catch {
        throw new ValidationError(field, "tenant must be 1-64 characters of A-Z, a-z, 0-9, _, . and -");
      }
      if (key.length < MIN_API_KEY_LENGTH || !KEY_CHARACTERS.test(key)) {
        throw new ValidationError(
          field,
          `key of tenant '${tenant}' must be at least ${MIN_API_KEY_LENGTH} printable characters without spaces (e.g. openssl rand -hex 32)`,
        );
      }
      const digest = sha256(key);
      const hex = digest.toString("hex");
      if (seen.has(hex)) throw new ValidationError(field, "the same key is configured twice");
      seen.add(hex);
      entries.push({ digest, principal: { tenant, keyId: hex.slice(0, 12) } });
    }
    return new ApiKeyring(entries);
  }

  /** No keys: authentication is off. */
  static empty(): ApiKeyring {
    return new ApiKeyring([]);
  }

  get size(): number {
    return this.#entries.length;
  }

  get enabled(): boolean {
    return this.#entries.length > 0;
  }

  /** Tenants that have at least one key. */
  get tenants(): string[] {
    return [...new Set(this.#entries.map((entry) => entry.principal.tenant))];
  }

  /** The principal of a presented key, or null when it matches none. */
  authenticate(presented: string): Principal | null {
    const known = this.#matched.get(presented);
    if (known) return known;
    const digest = sha256(presented);
    let match: Principal | null = null;
    for (const entry of this.#entries) {
      // Every entry is compared, matched or not, so the time does not depend on which one matched.
      if (timingSafeEqual(entry.digest, digest)) match = entry.principal;
    }
    if (match) this.#matched.set(presented, match);
    return match;
  }
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/**
 * Parses `tenant:key` entries separated by commas or new lines; blank entries and `#` comment
 * lines are skipped.
 */
export function parseApiKeyPairs(text: string, source: string): { tenant: string; key: string }[] {
  const pairs: { tenant: string; key: string }[] = [];
  const entries = text
    .split(/[,\n]/)
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "" && !entry.startsWith("#"));
  for (const [index, entry] of entries.entries()) {
    const colon = entry.indexOf(":");
    if (colon <= 0 || colon === entry.length - 1) {
      throw new ValidationError(`${source}[${index}]`, "must be tenant:key");
    }
    pairs.push({ tenant: entry.slice(0, colon).trim(), key: entry.slice(colon + 1).trim() });
  }
  return pairs;
}

/**
 * The keyring the environment configures: `MEMORY_API_KEYS` ("tenant:key,...") and the file
 * named by `MEMORY_API_KEYS_FILE` (one `tenant:key` a line, `#` comments), merged.
 */
export function apiKeyringFromEnv(env: Record<string, string | undefined>): ApiKeyring {
  const pairs = parseApiKeyPairs(env.MEMORY_API_KEYS ?? "", "MEMORY_API_KEYS");
  const file = env.MEMORY_API_KEYS_FILE;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      const reason = error instanceof Error && "code" in error ? String(error.code) : "unreadable";
      throw new ValidationError("MEMORY_API_KEYS_FILE", `cannot read ${file} (${reason})`);
    }
    pairs.push(...parseApiKeyPairs(text, "MEMORY_API_KEYS_FILE"));
  }
  return ApiKeyring.fromPairs(pairs, "MEMORY_API_KEYS");
}

/** The key a request presents: `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
export function presentedKey(headers: Record<string, string | string[] | undefined>): string | null {
  const authorization = headers.authorization;
  if (typeof authorization === "string") {
    const [, key] = /^Bearer\s+(\S+)\s*$/i.exec(authorization) ?? [];
    if (key) return key;
  }
  const apiKey = headers["x-api-key"];
  if (typeof apiKey === "string" && apiKey.trim() !== "") return apiKey.trim();
  return null;
}

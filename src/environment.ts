import { z } from "zod";
import { ValidationError } from "./errors.js";
import { isTimeZone } from "./legacy/local-time.js";

/**
 * Every environment variable the product reads (library, service, summarizer and CLI alike), as
 * one schema: a bad value stops start-up with a ValidationError naming the variable, instead of an
 * `Invalid URL` without a name, a driver's `getaddrinfo ENOTFOUND`, or a NaN that silently turns a
 * feature off. Values are trimmed; empty ones count as unset. Checks that span variables (a public
 * HOST needs API keys) live with their users (`service/config.ts`).
 */
/**
 * A URL with one of `protocols` that names its host. `hostParameter`: PostgreSQL's (libpq's) form
 * may name it in the query instead, `postgres:///memory?host=/var/run/postgresql` for a Unix
 * socket, which is what node-postgres then connects to.
 */
const url = (protocols: readonly string[], example: string, options: { hostParameter?: boolean } = {}) =>
  z.string().superRefine((value, context) => {
    // node's URL parser refuses a user with no host (postgres://memory@/memory), which libpq takes.
    const socket = options.hostParameter
      ? ", or postgres:///<database>?host=/<socket folder>&user=<user>"
      : "";
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      context.addIssue({
        code: "custom",
        message: `must be a URL like ${example}${socket} (got '${value}')`,
      });
      return;
    }
    if (!protocols.includes(parsed.protocol)) {
      context.addIssue({
        code: "custom",
        message: `must start with ${protocols.map((protocol) => `${protocol}//`).join(" or ")}, like ${example} (got '${value}')`,
      });
    } else if (!parsed.hostname && !(options.hostParameter && parsed.searchParams.get("host"))) {
      context.addIssue({
        code: "custom",
        message: `names no host, like ${example}${socket} (got '${value}')`,
      });
    }
  });

/** A comma-separated list: its items trimmed, empty ones dropped. */
const commaList = () =>
  z.string().transform((value) =>
    value
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item.length > 0),
  );

/** A comma-separated list of distinct Redis URLs (REDIS_URLS: the shards). */
const redisUrlList = () =>
  commaList().superRefine((urls, context) => {
    const check = url(["redis:", "rediss:"], "redis://a:6379,redis://b:6379");
    for (const [index, item] of urls.entries()) {
      const result = check.safeParse(item);
      if (!result.success) {
        const message = result.error.issues[0]?.message ?? "is not a Redis URL";
        context.addIssue({ code: "custom", message: `URL ${index + 1} ${message}` });
      }
    }
    if (urls.length === 0) context.addIssue({ code: "custom", message: "names no URL" });
    if (new Set(urls).size !== urls.length) {
      context.addIssue({ code: "custom", message: "names a URL twice" });
    }
  });

const wholeNumber = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .refine((value) => value >= min && value <= max, `must be a whole number from ${min} to ${max}`);

const flag = (name: string) =>
  z
    .string()
    .transform((value) => value.toLowerCase())
    .refine((value) => ["true", "false", "1", "0"].includes(value), `${name} is true or false`)
    .transform((value) => value === "true" || value === "1");

const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z
    .string()
    .transform((value) => value.toLowerCase())
    .pipe(z.enum(values, { error: `must be one of ${values.join(", ")}` }));

const text = () => z.string().min(1);

/** Retention in days per tenant: `tenant:days` pairs, comma-separated; `forever` keeps all. */
const tenantRetention = () =>
  z.string().transform((value, context) => {
    const days = new Map<string, number | null>();
    for (const item of value
      .split(",")
      .map((part) => part.trim())
      .filter(Boolean)) {
      const match = /^([^:\s]+):(\d{1,5}|forever)$/.exec(item);
      const count = match?.[2] === "forever" ? null : Number(match?.[2]);
      if (!match?.[1] || (count !== null && (count < 1 || count > 36_500))) {
        context.addIssue({
          code: "custom",
          message: `must be tenant:days pairs (days 1-36500 or forever), like acme:30,beta:forever (got '${item}')`,
        });
        return z.NEVER;
      }
      days.set(match[1], count);
    }
    return days;
  });

/** What the library reads: where the stores are, the tokenizer, keys, migrations, idle sessions. */
const LIBRARY = {
  REDIS_URL: url(["redis:", "rediss:"], "redis://127.0.0.1:6379"),
  REDIS_HOST: text(),
  REDIS_PORT: wholeNumber(1, 65535),
  REDIS_DB: wholeNumber(0, 1_000_000),
  REDIS_PASSWORD: text(),
  REDIS_CLUSTER: flag("REDIS_CLUSTER"),
  REDIS_URLS: redisUrlList(),
  REDIS_SENTINELS: commaList().refine(
    (items) => items.length > 0 && items.every((item) => /^[^\s:,]+:\d{1,5}$/.test(item)),
    "must be host:port pairs, comma-separated, like sentinel-a:26379,sentinel-b:26379",
  ),
  MEMORY_READ_FROM_REPLICAS: oneOf(["primary", "eventual"] as const),
  REDIS_SENTINEL_NAME: z.string().regex(/^\S{1,128}$/, "must be the monitored primary's name, like mymaster"),
  DATABASE_URL: url(["postgres:", "postgresql:"], "postgres://user@127.0.0.1:5432/memory", {
    hostParameter: true,
  }),
  MEMORY_DATA_DIR: text(),
  MEMORY_TOKENIZER_MODEL: text(),
  // Braces would end the session's hash tag early.
  MEMORY_KEY_PREFIX: z
    .string()
    .regex(/^[^{}\s]{1,128}$/, "must be 1-128 characters without braces or spaces"),
  MEMORY_AUTO_MIGRATE: flag("MEMORY_AUTO_MIGRATE"),
  MEMORY_IDLE_FINALIZE_SECONDS: wholeNumber(0, 10 * 365 * 24 * 60 * 60),
  MEMORY_RETENTION_DAYS: wholeNumber(1, 36_500),
  // A text search configuration's name; whether the database has it is checked at start-up.
  MEMORY_SEARCH_LANGUAGE: z
    .string()
    .regex(
      /^[A-Za-z_][A-Za-z0-9_]{0,62}$/,
      "must be the name of a text search configuration, like simple or english",
    ),
  MEMORY_RETENTION_TENANT_DAYS: tenantRetention(),
  MEMORY_RETENTION_SWEEP_SECONDS: wholeNumber(0, 7 * 24 * 60 * 60),
};

/** What the summarizer reads (`createSummarizer`). */
const SUMMARIZER = {
  MEMORY_SUMMARIZER: oneOf(["extractive", "openai"]),
  OPENAI_BASE_URL: url(["http:", "https:"], "https://api.openai.com/v1"),
  OPENAI_API_KEY: text(),
  MEMORY_SUMMARY_MODEL: text(),
  MEMORY_SUMMARY_TIMEOUT_MS: wholeNumber(1, 3_600_000),
  MEMORY_SUMMARY_TEMPERATURE: z
    .string()
    .regex(/^\d+(\.\d+)?$/, "must be a number from 0 to 2")
    .transform(Number)
    .refine((value) => value <= 2, "must be a number from 0 to 2"),
};

/** What `swisper-memory serve` reads: where it listens, who may call it, its limits, its logs. */
const SERVICE = {
  PORT: wholeNumber(0, 65_535),
  HOST: text(),
  MEMORY_API_KEYS: text(),
  MEMORY_API_KEYS_FILE: text(),
  MEMORY_BODY_LIMIT_BYTES: wholeNumber(1024, 1024 ** 3),
  MEMORY_RATE_LIMIT_PER_MINUTE: wholeNumber(0, 1_000_000_000),
  MEMORY_SHUTDOWN_TIMEOUT_MS: wholeNumber(0, 600_000),
  LOG_LEVEL: oneOf(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
};

/** What the operator commands read to ask a running service instead of opening its storage. */
const CLI = {
  MEMORY_URL: url(["http:", "https:"], "http://127.0.0.1:8080"),
  MEMORY_API_KEY: text(),
};

/**
 * The legacy session store (`swisper_sessions`) the memory migrates from: `swisper-memory legacy`
 * reads it, and the library mirrors writes into it in migration phases `coexistence`, `gradual`
 * and `full`.
 */
const LEGACY = {
  LEGACY_DATABASE_URL: url(["postgres:", "postgresql:"], "postgres://user@127.0.0.1:5432/swisper", {
    hostParameter: true,
  }),
  MEMORY_MIGRATION_PHASE: z
    .string()
    .transform((value) => value.toLowerCase())
    .pipe(
      z.enum(["off", "coexistence", "gradual", "full"], {
        error: "must be one of off, coexistence, gradual, full",
      }),
    ),
  MEMORY_MIGRATION_SAMPLE_RATE: z
    .string()
    .regex(/^(0(\.\d+)?|1(\.0+)?)$/, "must be a number from 0 to 1")
    .transform(Number),
  MEMORY_LEGACY_WRITE_TIMEOUT_MS: wholeNumber(1, 60_000),
  /** The IANA zone of the legacy store's local times (its server's clock). */
  LEGACY_TIME_ZONE: z.string().refine(isTimeZone, "must be an IANA time zone like Europe/Zurich"),
};

export const MemoryEnvironmentSchema = z
  .object({ ...LIBRARY, ...SUMMARIZER, ...SERVICE, ...CLI, ...LEGACY })
  .partial();

export type MemoryEnvironment = z.infer<typeof MemoryEnvironmentSchema>;

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The variables the library reads (stores, tokenizer, summarizer, legacy store), checked; unset and empty ones
 * are left out. The service's and the CLI's are not checked here: a program that embeds the
 * library may use PORT or LOG_LEVEL for itself. Throws a ValidationError naming the variable.
 */
export function readMemoryEnvironment(env: Env): MemoryEnvironment {
  return readVariables(env, [...Object.keys(LIBRARY), ...Object.keys(SUMMARIZER), ...Object.keys(LEGACY)]);
}

/** Every variable the product knows, checked: what `swisper-memory` and the service read. */
export function readProductEnvironment(env: Env): MemoryEnvironment {
  return readVariables(env, Object.keys(MemoryEnvironmentSchema.shape));
}

function readVariables(env: Env, names: readonly string[]): MemoryEnvironment {
  const present: Record<string, string> = {};
  for (const name of names) {
    const value = env[name]?.trim();
    if (value) present[name] = value;
  }
  const result = MemoryEnvironmentSchema.safeParse(present);
  if (result.success) return result.data;
  const [issue] = result.error.issues;
  throw new ValidationError(String(issue?.path[0] ?? "environment"), issue?.message ?? "is not valid");
}

import { z } from "zod";
import { ValidationError } from "./errors.js";

/**
 * The environment variables the memory manager reads (library, service and CLI alike), as one
 * schema: a bad value stops start-up with a ValidationError naming the variable, instead of an
 * `Invalid URL` without a name, a driver's `getaddrinfo ENOTFOUND`, or a NaN that silently turns a
 * feature off. The service's own variables (PORT, HOST, keys, limits) are checked in
 * `service/config.ts`; the summarizer's in `summarizer/index.ts`.
 */
const url = (protocols: readonly string[], example: string) =>
  z.string().superRefine((value, context) => {
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      context.addIssue({ code: "custom", message: `must be a URL like ${example} (got '${value}')` });
      return;
    }
    if (!protocols.includes(parsed.protocol)) {
      context.addIssue({
        code: "custom",
        message: `must start with ${protocols.map((protocol) => `${protocol}//`).join(" or ")}, like ${example} (got '${value}')`,
      });
    } else if (!parsed.hostname) {
      context.addIssue({ code: "custom", message: `names no host, like ${example} (got '${value}')` });
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
    .transform((value) => value.trim().toLowerCase())
    .refine((value) => ["true", "false", "1", "0"].includes(value), `${name} is true or false`)
    .transform((value) => value === "true" || value === "1");

export const MemoryEnvironmentSchema = z.object({
  REDIS_URL: url(["redis:", "rediss:"], "redis://127.0.0.1:6379").optional(),
  REDIS_HOST: z.string().min(1).optional(),
  REDIS_PORT: wholeNumber(1, 65535).optional(),
  REDIS_DB: wholeNumber(0, 1_000_000).optional(),
  REDIS_PASSWORD: z.string().optional(),
  REDIS_CLUSTER: flag("REDIS_CLUSTER").optional(),
  DATABASE_URL: url(["postgres:", "postgresql:"], "postgres://user@127.0.0.1:5432/memory").optional(),
  MEMORY_DATA_DIR: z.string().min(1).optional(),
  MEMORY_TOKENIZER_MODEL: z.string().min(1).optional(),
  // Braces would end the session's hash tag early.
  MEMORY_KEY_PREFIX: z
    .string()
    .regex(/^[^{}\s]{1,128}$/, "must be 1-128 characters without braces or spaces")
    .optional(),
  MEMORY_AUTO_MIGRATE: flag("MEMORY_AUTO_MIGRATE").optional(),
  MEMORY_IDLE_FINALIZE_SECONDS: wholeNumber(0, 10 * 365 * 24 * 60 * 60).optional(),
});

export type MemoryEnvironment = z.infer<typeof MemoryEnvironmentSchema>;

/** Reads and checks the variables; unset and empty variables are left out. */
export function readMemoryEnvironment(env: Record<string, string | undefined>): MemoryEnvironment {
  const present = Object.fromEntries(
    Object.keys(MemoryEnvironmentSchema.shape)
      .filter((name) => env[name] !== undefined && env[name] !== "")
      .map((name) => [name, env[name]]),
  );
  const result = MemoryEnvironmentSchema.safeParse(present);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const variable = String(issue.path[0]);
  throw new ValidationError(variable, issue.message);
}

import { parseArgs } from "node:util";
import { ValidationError } from "../errors.js";

export type Environment = Record<string, string | undefined>;

/** Where a command reads settings and writes output; tests pass their own. */
export interface CliContext {
  env: Environment;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** One `swisper-memory <name>` command; each lives in its own file. */
export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** The whole `--help` text. */
  help: string;
  /** Returns the exit code. */
  run(args: string[], context: CliContext): Promise<number>;
}

/** A mistake on the command line: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string }>;
/** What parsing gives for each option: a string, true for a flag, undefined when absent. */
export type OptionValues<T extends OptionSpec> = {
  [K in keyof T]?: T[K]["type"] extends "boolean" ? boolean : string;
};

/** `node:util` parseArgs, strict, with errors as UsageError. */
export function parseCommandLine<T extends OptionSpec>(
  args: string[],
  options: T,
  positionals: { min: number; max: number },
): { values: OptionValues<T>; positionals: string[] } {
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const count = parsed.positionals.length;
  if (count < positionals.min) throw new UsageError("missing argument");
  if (count > positionals.max) {
    throw new UsageError(`unexpected argument '${parsed.positionals[positionals.max]}'`);
  }
  return { values: parsed.values as OptionValues<T>, positionals: parsed.positionals };
}

/** An integer option in a range, or the fallback. */
export function integerOption(
  value: string | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
) {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}`);
  }
  return Number(value);
}

/** With --url, the service resolves the tenant from the API key; --tenant cannot choose it. */
export const TENANT_WITH_URL =
  "--tenant cannot be used with --url or MEMORY_URL: the service takes the tenant from the API key (MEMORY_API_KEY)";

export function write(stream: NodeJS.WritableStream, text = ""): void {
  stream.write(`${text}\n`);
}

/** A message for an error a command could not handle: the library's errors name their field. */
export function describeError(error: unknown): string {
  // A ValidationError's message starts with the field it names.
  if (error instanceof ValidationError) return `invalid ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

/**
 * zod issues → the one ValidationError the library throws and the HTTP layer answers 400 with:
 * the same field path (`messages[1].role`) and the same words (the schemas' own messages), so a
 * library caller and an HTTP caller who send the same bad input read the same error.
 */
import type { z } from "zod";
import { ValidationError } from "../errors.js";

type Issue = z.core.$ZodIssue;
type Segment = PropertyKey;

/** A rule between fields, run once every field is well-formed. */
export type Check<T> = z.core.CheckFn<T>;

/** A check's complaint at `path` (below the value checked), in the schema's own words. */
export function complain(payload: z.core.ParsePayload, path: Segment[], message: string): void {
  payload.issues.push({ code: "custom", input: payload.value, path, message });
}

/** The errors of a strict object: not an object, or a key it does not know (named by the mapping). */
export function strictObjectErrors(unknownKey = "unknown field") {
  return {
    error: (issue: { code: string }) =>
      issue.code === "unrecognized_keys" ? unknownKey : "must be an object",
  };
}

/**
 * Parses `input` with `schema`, or throws a ValidationError for its most relevant issue. Fields
 * are named under `root` (`message` → `message.role`; "" → `max_tokens`); a wrong value at the
 * root itself is named `whole` (default: `root`).
 */
export function parseOrThrow<Schema extends z.ZodType>(
  schema: Schema,
  input: unknown,
  root: string,
  whole = root,
): z.output<Schema> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw toValidationError(result.error.issues, root, whole);
}

/** The ValidationError for the issue a caller should fix first (see `mostRelevant`). */
export function toValidationError(issues: readonly Issue[], root: string, whole = root): ValidationError {
  const { issue, path } = mostRelevant(issues, []);
  // zod reports unknown keys on the object that holds them; the caller wants the key named.
  const fieldPath = issue.code === "unrecognized_keys" ? [...path, issue.keys[0] ?? ""] : path;
  return new ValidationError(formatPath(root, fieldPath) || whole, issue.message);
}

/**
 * The issue to report, with its full path. An unknown key comes first (the caller sent something
 * this version does not know, which explains the rest). In a union (content: string, parts or
 * null; a body: a message or a batch), branches whose only complaint is the input's type did not
 * apply; when one branch is left it is what the caller meant, otherwise the branch with the
 * fewest issues; with none left the union's own message stands.
 */
function mostRelevant(
  issues: readonly Issue[],
  prefix: readonly Segment[],
): { issue: Issue; path: Segment[] } {
  // biome-ignore lint/style/noNonNullAssertion: a failed parse, and each branch recursed into, has an issue
  const issue = issues.find((candidate) => candidate.code === "unrecognized_keys") ?? issues[0]!;
  const path = [...prefix, ...issue.path];
  if (issue.code !== "invalid_union") return { issue, path };
  const applicable = issue.errors.filter((branch) => branch.length > 0 && !isTypeMismatch(branch));
  if (applicable.length === 0) return { issue, path };
  const branch = applicable.reduce((best, candidate) => (candidate.length < best.length ? candidate : best));
  return mostRelevant(branch, path);
}

function isTypeMismatch(branch: readonly Issue[]): boolean {
  const [only] = branch;
  return branch.length === 1 && only?.code === "invalid_type" && only.path.length === 0;
}

/** `["messages", 0, "role"]` under "" → `messages[0].role`; `["role"]` under "message" → `message.role`. */
function formatPath(root: string, path: readonly Segment[]): string {
  let text = root;
  for (const segment of path) {
    if (typeof segment === "number") text += `[${segment}]`;
    else text += text === "" ? String(segment) : `.${String(segment)}`;
  }
  return text;
}

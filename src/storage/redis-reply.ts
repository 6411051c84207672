import { UnexpectedReplyError } from "../errors.js";

/**
 * Reads one Redis reply of a known shape into typed values. Each accessor checks one part and
 * throws an UnexpectedReplyError naming the script or command and that part, so that a reply of
 * another shape fails where it arrives rather than as NaN or undefined further on.
 */
export class ReplyReader {
  /** `source`: the script file or command that answered, for the error. */
  constructor(
    readonly source: string,
    readonly reply: unknown,
  ) {}

  /** The reply as an array tagged by its first item; `lengths` gives each tag's array length. */
  variant<Tag extends string>(lengths: Readonly<Record<Tag, number>>): [Tag, unknown[]] {
    const items = this.array(this.reply, "the reply");
    const tag = items[0];
    if (typeof tag !== "string" || !Object.hasOwn(lengths, tag)) {
      return this.fail(`its status is ${describeTag(tag)}, not one of ${Object.keys(lengths).join(", ")}`);
    }
    const length = lengths[tag as Tag];
    if (items.length !== length)
      return this.fail(`a "${tag}" reply has ${items.length} items, not ${length}`);
    return [tag as Tag, items];
  }

  /** `value` (the whole reply by default) as an array of exactly `length` items. */
  tuple(length: number, value: unknown = this.reply, name = "the reply"): unknown[] {
    const items = this.array(value, name);
    if (items.length !== length) return this.fail(`${name} has ${count(items)}, not ${length}`);
    return items;
  }

  array(value: unknown, name: string): unknown[] {
    return Array.isArray(value) ? value : this.fail(`${name} is ${describe(value)}, not an array`);
  }

  integer(value: unknown, name: string): number {
    return Number.isSafeInteger(value)
      ? (value as number)
      : this.fail(`${name} is ${describe(value)}, not an integer`);
  }

  /** An integer reply of 1 (true) or 0 (false), as scripts answer yes-or-no. */
  flag(value: unknown = this.reply, name = "the reply"): boolean {
    if (value === 1 || value === 0) return value === 1;
    return this.fail(`${name} is ${describe(value)}, not 1 or 0`);
  }

  string(value: unknown, name: string): string {
    return typeof value === "string" ? value : this.fail(`${name} is ${describe(value)}, not a string`);
  }

  strings(value: unknown, name: string): string[] {
    const items = this.array(value, name);
    for (let i = 0; i < items.length; i++) this.string(items[i], `${name}[${i}]`);
    return items as string[];
  }

  /** A flat field/value array (HGETALL, a stream entry's fields) as a record. */
  fields(value: unknown, name: string): Record<string, string> {
    const flat = this.strings(value, name);
    if (flat.length % 2 !== 0) return this.fail(`${name} has an odd number of items`);
    const record: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) record[flat[i] ?? ""] = flat[i + 1] ?? "";
    return record;
  }

  fail(problem: string): never {
    throw new UnexpectedReplyError(this.source, this.reply, problem);
  }
}

function count(items: readonly unknown[]): string {
  return items.length === 1 ? "1 item" : `${items.length} items`;
}

/** A value's kind, never the value itself: replies carry stored messages, which stay out of logs. */
function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === "number") {
    if (Number.isSafeInteger(value)) return "an integer";
    return Number.isInteger(value) ? "an integer beyond 2^53" : `the number ${value}`;
  }
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/** A status word is the script's own and safe to show; anything else is described by its kind. */
function describeTag(tag: unknown): string {
  return typeof tag === "string" && /^[a-z_-]{1,24}$/i.test(tag) ? `"${tag}"` : describe(tag);
}

/**
 * A strict parser of the Prometheus text exposition format 0.0.4, for tests: it throws on any line
 * a Prometheus server would reject or misread (bad names, bad label syntax or escapes, unparsable
 * values, a TYPE after samples, a family split in two, a duplicate series) and checks each
 * histogram's shape (ascending `le`, cumulative counts, a `+Inf` bucket equal to `_count`, a
 * `_sum`). The npm parser that exists (parse-prometheus-text-format) loses labelled histograms.
 */

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export interface Sample {
  /** The sample's own name (`x_bucket`, `x_sum`, ...). */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES: readonly MetricType[] = ["counter", "gauge", "histogram", "summary", "untyped"];
const SUFFIXES: Record<MetricType, readonly string[]> = {
  counter: [""],
  gauge: [""],
  untyped: [""],
  histogram: ["_bucket", "_sum", "_count"],
  summary: ["", "_sum", "_count"],
};

export class ExpositionError extends Error {
  constructor(lineNumber: number, line: string, reason: string) {
    super(`line ${lineNumber}: ${reason}: ${JSON.stringify(line)}`);
  }
}

export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  if (text !== "" && !text.endsWith("\n")) throw new ExpositionError(0, text.slice(-40), "no final newline");
  const families = new Map<string, MetricFamily>();
  const finished = new Set<string>();
  const seen = new Set<string>();
  let current: MetricFamily | null = null;
  const lines = text.split("\n").slice(0, -1);

  const family = (name: string): MetricFamily => {
    let entry = families.get(name);
    if (!entry) {
      entry = { name, help: "", type: "untyped", samples: [] };
      families.set(name, entry);
    }
    return entry;
  };

  lines.forEach((line, index) => {
    const lineNumber = index + 1;
    const fail = (reason: string): never => {
      throw new ExpositionError(lineNumber, line, reason);
    };
    if (line.trim() === "") return;
    if (line.startsWith("#")) {
      const match = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (!match) return; // a comment
      const [, keyword, name, rest = ""] = match;
      if (!METRIC_NAME.test(name!)) fail("bad metric name");
      if (finished.has(name!)) fail("family continues after another one started");
      const entry = family(name!);
      if (current && current !== entry) finished.add(current.name);
      current = entry;
      if (keyword === "HELP") {
        entry.help = unescapeText(rest, false, fail);
      } else {
        if (!TYPES.includes(rest as MetricType)) fail("unknown type");
        if (entry.samples.length > 0) fail("TYPE after the family's samples");
        entry.type = rest as MetricType;
      }
      return;
    }

    const sample = parseSample(line, fail);
    const owner = ownerOf(sample.name, families) ?? family(sample.name);
    if (finished.has(owner.name)) fail("family continues after another one started");
    if (current && current !== owner) finished.add(current.name);
    current = owner;
    const series = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    if (seen.has(series)) fail("duplicate series");
    seen.add(series);
    owner.samples.push(sample);
  });

  for (const entry of families.values()) if (entry.type === "histogram") checkHistogram(entry);
  return families;
}

function ownerOf(sampleName: string, families: Map<string, MetricFamily>): MetricFamily | undefined {
  for (const entry of families.values()) {
    if (SUFFIXES[entry.type].some((suffix) => `${entry.name}${suffix}` === sampleName)) return entry;
  }
  return undefined;
}

function parseSample(line: string, fail: (reason: string) => never): Sample {
  const nameEnd = line.search(/[{\s]/);
  if (nameEnd <= 0) fail("no value");
  const name = line.slice(0, nameEnd);
  if (!METRIC_NAME.test(name)) fail("bad metric name");
  const labels: Record<string, string> = {};
  let rest = line.slice(nameEnd);
  if (rest.startsWith("{")) {
    let position = 1;
    while (rest[position] !== "}") {
      const equals = rest.indexOf("=", position);
      if (equals < 0) fail("bad labels");
      const labelName = rest.slice(position, equals).trim();
      if (!LABEL_NAME.test(labelName)) fail(`bad label name ${labelName}`);
      if (labelName in labels) fail(`label ${labelName} twice`);
      if (rest[equals + 1] !== '"') fail("label value not quoted");
      let end = equals + 2;
      while (end < rest.length && rest[end] !== '"') end += rest[end] === "\\" ? 2 : 1;
      if (end >= rest.length) fail("unterminated label value");
      labels[labelName] = unescapeText(rest.slice(equals + 2, end), true, fail);
      position = end + 1;
      if (rest[position] === ",") position++;
      else if (rest[position] !== "}") fail("expected , or } after a label");
    }
    rest = rest.slice(position + 1);
  }
  const parts = rest.trim().split(/\s+/);
  if (!/^\s/.test(rest) || parts.length < 1 || parts.length > 2)
    fail("expected a value and an optional timestamp");
  const value = parseValue(parts[0]!, fail);
  if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) fail("bad timestamp");
  return { name, labels, value };
}

// As Prometheus reads values (Go's strconv.ParseFloat): NaN and Inf in any case.
function parseValue(text: string, fail: (reason: string) => never): number {
  if (/^nan$/i.test(text)) return Number.NaN;
  if (/^\+?inf(inity)?$/i.test(text)) return Number.POSITIVE_INFINITY;
  if (/^-inf(inity)?$/i.test(text)) return Number.NEGATIVE_INFINITY;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) fail(`bad value ${text}`);
  return Number(text);
}

function unescapeText(text: string, quoted: boolean, fail: (reason: string) => never): string {
  return text.replace(/\\(.)/g, (_match, character: string) => {
    if (character === "\\") return "\\";
    if (character === "n") return "\n";
    if (quoted && character === '"') return '"';
    return fail(`bad escape \\${character}`);
  });
}

function checkHistogram(entry: MetricFamily): void {
  const groups = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const sample of entry.samples) {
    const { le, ...rest } = sample.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    let group = groups.get(key);
    if (!group) {
      group = { buckets: [] };
      groups.set(key, group);
    }
    if (sample.name.endsWith("_bucket")) {
      if (le === undefined) throw new Error(`${entry.name}: a bucket without le`);
      group.buckets.push([le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le), sample.value]);
    } else if (sample.name.endsWith("_sum")) group.sum = sample.value;
    else group.count = sample.value;
  }
  for (const [key, group] of groups) {
    const where = `${entry.name}${key}`;
    if (group.sum === undefined || group.count === undefined) throw new Error(`${where}: no _sum or _count`);
    const last = group.buckets.at(-1);
    if (!last || last[0] !== Number.POSITIVE_INFINITY) throw new Error(`${where}: no +Inf bucket`);
    if (last[1] !== group.count) throw new Error(`${where}: +Inf bucket is not _count`);
    group.buckets.forEach(([bound, count], index) => {
      const previous = group.buckets[index - 1];
      if (previous && (bound <= previous[0] || count < previous[1])) {
        throw new Error(`${where}: buckets not ascending and cumulative`);
      }
    });
  }
}

/** The value of a counter or gauge series, or a histogram's `_count`, matching `labels`. */
export function sampleValue(
  families: Map<string, MetricFamily>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const entry = families.get(name);
  if (!entry) return Number.NaN;
  const sampleName = entry.type === "histogram" || entry.type === "summary" ? `${name}_count` : name;
  const sample = entry.samples.find(
    (candidate) =>
      candidate.name === sampleName &&
      Object.entries(labels).every(([key, expected]) => candidate.labels[key] === expected),
  );
  return sample?.value ?? Number.NaN;
}

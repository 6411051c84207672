/**
 * The legacy store writes local time without a zone (`2025-06-03T14:07:55.123456`, Python's
 * `datetime.now().isoformat()`): only the operator knows the zone its server ran in.
 */

const LOCAL_ISO = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$/;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** Whether `timeZone` is an IANA zone this runtime knows. */
export function isTimeZone(timeZone: string): boolean {
  try {
    formatterFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** Offsets by zone and quarter hour: zones change offset on the hour or half hour. */
const offsets = new Map<string, number>();

/** The zone's offset from UTC at `epochMs`, in ms (positive east of Greenwich). */
function offsetMs(timeZone: string, epochMs: number): number {
  // Intl's formatToParts costs ~10 us: the largest CPU cost of an import without the cache.
  const key = `${timeZone} ${Math.floor(epochMs / 900_000)}`;
  let offset = offsets.get(key);
  if (offset === undefined) {
    if (offsets.size >= 100_000) offsets.clear();
    offset = computeOffsetMs(timeZone, epochMs);
    offsets.set(key, offset);
  }
  return offset;
}

function computeOffsetMs(timeZone: string, epochMs: number): number {
  const parts: Record<string, number> = {};
  for (const part of formatterFor(timeZone).formatToParts(new Date(epochMs))) {
    if (part.type !== "literal") parts[part.type] = Number(part.value);
  }
  const asUtc = Date.UTC(
    parts.year ?? 1970,
    (parts.month ?? 1) - 1,
    parts.day ?? 1,
    parts.hour ?? 0,
    parts.minute ?? 0,
    parts.second ?? 0,
  );
  return asUtc - (epochMs - (((epochMs % 1000) + 1000) % 1000));
}

/**
 * Epoch seconds (with the fraction) of a local ISO time in `timeZone`, or null when `text` is not
 * one. A time that a DST change skipped or repeated resolves to the earlier offset's reading.
 */
export function localIsoToEpochSeconds(text: string, timeZone: string): number | null {
  const match = LOCAL_ISO.exec(text);
  if (!match) return null;
  const [, year, month, day, hour, minute, second = "0", fraction = ""] = match;
  const wallClock = Date.UTC(
    Number(year),
    Number(month) - 1,
    Number(day),
    Number(hour),
    Number(minute),
    Number(second),
  );
  if (Number.isNaN(wallClock)) return null;
  // Two passes: the offset at the guess can differ from the offset at the answer across a DST change.
  let epochMs = wallClock - offsetMs(timeZone, wallClock);
  epochMs = wallClock - offsetMs(timeZone, epochMs);
  const seconds = epochMs / 1000 + (fraction ? Number(`0.${fraction}`) : 0);
  return seconds >= 0 ? seconds : null;
}

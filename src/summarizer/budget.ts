// biome-ignore-all lint/style/noNonNullAssertion: reads of positions at indexes the binary search keeps in range
/**
 * Cuts text to a token budget at the best boundary that fits: the end of a sentence or line, else
 * the end of a word (marked with an ellipsis), else a code point. Token counts of prefixes only
 * grow with their length in practice, so a binary search finds the longest fitting prefix; the
 * result is checked once more so a counter that breaks that rule cannot push it over budget.
 */
export function cutToTokenBudget(
  text: string,
  maxTokens: number,
  countTokens: (text: string) => number,
): string {
  const trimmed = text.trim();
  if (countTokens(trimmed) <= maxTokens) return trimmed;
  const fits = (candidate: string) => candidate.length > 0 && countTokens(candidate) <= maxTokens;

  const bySentence = longestFitting(sentenceEnds(trimmed), (end) => trimmed.slice(0, end).trimEnd(), fits);
  if (bySentence !== null) return bySentence;

  const byWord = longestFitting(wordEnds(trimmed), (end) => `${trimmed.slice(0, end).trimEnd()}…`, fits);
  if (byWord !== null) return byWord;

  const codePoints = Array.from(trimmed);
  const prefixLengths = codePoints.map((_, index) => index + 1);
  const byCodePoint =
    longestFitting(prefixLengths, (length) => `${codePoints.slice(0, length).join("")}…`, fits) ??
    longestFitting(prefixLengths, (length) => codePoints.slice(0, length).join(""), fits);
  // A budget too small for a single character: the caller's contract is non-empty text.
  return byCodePoint ?? codePoints[0] ?? "";
}

/** String offsets just after a sentence terminator or at a line break. */
function sentenceEnds(text: string): number[] {
  const ends: number[] = [];
  for (const match of text.matchAll(/[.!?…。！？](?=\s)|\n/gu)) {
    ends.push(match.index + (match[0] === "\n" ? 0 : match[0].length));
  }
  return ends.filter((end) => end > 0);
}

function wordEnds(text: string): number[] {
  const ends: number[] = [];
  for (const match of text.matchAll(/\s+/gu)) if (match.index > 0) ends.push(match.index);
  return ends;
}

/** The longest candidate (by ascending `positions`) that `fits`, or null when none does. */
function longestFitting(
  positions: readonly number[],
  render: (position: number) => string,
  fits: (candidate: string) => boolean,
): string | null {
  let low = 0;
  let high = positions.length - 1;
  let best = -1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    if (fits(render(positions[middle]!))) {
      best = middle;
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  for (let index = best; index >= 0; index--) {
    const candidate = render(positions[index]!);
    if (fits(candidate)) return candidate;
  }
  return null;
}

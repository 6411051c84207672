/**
 * A 53-bit hash of a string's UTF-16 code units (length mixed in), the cache key of long texts so
 * that the cache never holds their full text. Not cryptographic: two lanes of multiply-xorshift
 * mixing, about a nanosecond per character. A collision would return another text's count; with the
 * default 10,000 entries the chance per lookup is about 10^4 / 2^53, roughly 1 in 10^12.
 * It is a number so that it can never equal a short text's key (Map keeps 1 and "1" apart).
 */
export function contentHash(text: string): number {
  const length = text.length;
  let low = 0x9e3779b9 ^ length;
  let high = 0x85ebca6b ^ Math.imul(length, 0x27d4eb2f);
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i);
    low = Math.imul(low ^ code, 0x01000193);
    high = Math.imul(high ^ code, 0x5bd1e995);
    high ^= high >>> 15;
  }
  low ^= low >>> 16;
  low = Math.imul(low, 0x85ebca6b) ^ Math.imul(high ^ (high >>> 13), 0xc2b2ae35);
  low ^= low >>> 16;
  high ^= high >>> 16;
  high = Math.imul(high, 0xc2b2ae35) ^ Math.imul(low ^ (low >>> 13), 0x85ebca6b);
  high ^= high >>> 16;
  return (high & 0x1fffff) * 0x100000000 + (low >>> 0);
}

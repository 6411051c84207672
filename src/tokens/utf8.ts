/** Above this length the native encoder beats the JavaScript loop below. */
const NATIVE_ENCODE_MIN_LENGTH = 256;

const scratch: number[] = [];

/**
 * The UTF-8 bytes of `text` as a byte string (one char per byte). A lone surrogate becomes U+FFFD
 * (EF BF BD), as it does when the `tiktoken` binding, or any TextEncoder, encodes it.
 */
export function utf8ByteString(text: string): string {
  const length = text.length;
  let index = 0;
  while (index < length && text.charCodeAt(index) < 0x80) index++;
  if (index === length) return text;
  if (length >= NATIVE_ENCODE_MIN_LENGTH) return Buffer.from(text, "utf8").toString("latin1");

  const bytes = scratch;
  bytes.length = 0;
  for (let i = 0; i < index; i++) bytes.push(text.charCodeAt(i));
  for (; index < length; index++) {
    let code = text.charCodeAt(index);
    if (code < 0x80) {
      bytes.push(code);
    } else if (code < 0x800) {
      bytes.push(0xc0 | (code >> 6), 0x80 | (code & 0x3f));
    } else if (code >= 0xd800 && code <= 0xdfff) {
      const low = index + 1 < length ? text.charCodeAt(index + 1) : 0;
      if (code <= 0xdbff && low >= 0xdc00 && low <= 0xdfff) {
        code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
        index++;
        bytes.push(
          0xf0 | (code >> 18),
          0x80 | ((code >> 12) & 0x3f),
          0x80 | ((code >> 6) & 0x3f),
          0x80 | (code & 0x3f),
        );
      } else {
        bytes.push(0xef, 0xbf, 0xbd);
      }
    } else {
      bytes.push(0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f));
    }
  }
  return String.fromCharCode.apply(null, bytes);
}

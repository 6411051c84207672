/** Identifiers and positions: session ids, message ids (idempotency keys), tenant names, seqs. */
import { z } from "zod";

// Printable: no C0/C1 control characters (tabs and newlines included), 1 to 256 characters; and
// well-formed Unicode (no lone surrogate): stored as UTF-8, a lone surrogate becomes U+FFFD, so
// "a\uD800" and "a\uFFFD" would be taken for the same id and the second message dropped.
const PRINTABLE_ID = /^[^\p{Cc}\p{Cs}]{1,256}$/u;
const PRINTABLE_ID_RULE = "must be 1-256 printable characters of well-formed Unicode";

/**
 * A session id or a message id. The pattern bounds the length in characters (code points), as
 * JSON Schema's maxLength does; zod's `.max` would count UTF-16 units instead.
 */
export const printableId = () =>
  z
    .string({ error: PRINTABLE_ID_RULE })
    .regex(PRINTABLE_ID, { error: PRINTABLE_ID_RULE })
    .meta({ minLength: 1, maxLength: 256 });

export const SessionIdSchema = printableId().meta({
  description: "1-256 printable characters (URL-encode them)",
  examples: ["session_123"],
});

const TENANT_RULE = "must be 1-64 characters of A-Z, a-z, 0-9, _, . and -";

export const TenantSchema = z
  .string({ error: TENANT_RULE })
  .regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: TENANT_RULE });

/** A position in a session's transcript (or a summary version): 1-based. */
export const seq = () => z.number().int().min(1);

/** A count of messages or tokens. */
export const count = () => z.number().int().min(0);

import { ValidationError } from "../errors.js";
import type { EncodingName } from "./vocabulary.js";

/**
 * Model-name patterns, first match wins. Names are compared lower-cased, after removing a
 * fine-tune wrapper (`ft:gpt-4o-mini:org::id` counts as `gpt-4o-mini`).
 */
const MODEL_ENCODINGS: ReadonlyArray<readonly [RegExp, EncodingName]> = [
  // GPT-4o, 4.1 and 4.5 must be tested before the plain GPT-4 family below.
  [/^(?:chat)?gpt-4o(?:$|-)/, "o200k_base"],
  [/^gpt-4\.[15](?:$|-)/, "o200k_base"],
  [/^gpt-5(?:$|[-.])/, "o200k_base"],
  // The o-series reasoning models: o1, o1-mini, o3-pro, o4-mini, ...
  [/^o[1-9]\d*(?:$|-)/, "o200k_base"],
  // gpt-oss uses o200k_harmony: o200k_base's ranks plus special tokens, so ordinary text counts the same.
  [/^gpt-oss(?:$|-)/, "o200k_base"],
  [/^gpt-4(?:$|-)/, "cl100k_base"],
  // `gpt-35-turbo` is Azure OpenAI's spelling.
  [/^gpt-3\.?5-turbo(?:$|-)/, "cl100k_base"],
  [/^text-embedding-(?:3-small|3-large|ada-002)$/, "cl100k_base"],
];

/**
 * The encoding OpenAI uses for `model`: `o200k_base` for gpt-4o*, gpt-4.1*, gpt-4.5*, gpt-5*, the
 * o-series (o1, o3, o4-mini, ...) and gpt-oss; `cl100k_base` for gpt-4 and gpt-4-turbo,
 * gpt-3.5-turbo* and the text-embedding-3 / ada-002 models.
 *
 * @throws ValidationError (field `model`) for a model this package does not know.
 */
export function encodingForModel(model: string): EncodingName {
  if (typeof model !== "string" || model.trim() === "") {
    throw new ValidationError("model", "must be a non-empty model name such as gpt-4o");
  }
  const name = baseModelName(model.trim().toLowerCase());
  for (const [pattern, encoding] of MODEL_ENCODINGS) {
    if (pattern.test(name)) return encoding;
  }
  throw new ValidationError(
    "model",
    `unknown model "${model}": expected an OpenAI chat or embedding model such as gpt-4o, gpt-4.1, o3, gpt-5 or gpt-3.5-turbo`,
  );
}

function baseModelName(name: string): string {
  if (!name.startsWith("ft:")) return name;
  const base = name.slice(3).split(":", 1)[0];
  return base ?? name;
}

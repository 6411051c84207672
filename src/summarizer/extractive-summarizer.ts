// biome-ignore-all lint/style/noNonNullAssertion: capture groups of a regex that matched, and reads at indexes of arrays built alongside (one entry per item)
import { ValidationError } from "../errors.js";
import { LruCache } from "../tokens/lru-cache.js";
import type { StoredMessage, ToolCall } from "../types.js";
import { cutToTokenBudget } from "./budget.js";
import type { SummarizeRequest, SummarizeResult, Summarizer } from "./summarizer.js";
import { validateSummarizeRequest } from "./summarizer.js";
import {
  codePointOffset,
  collapseWhitespace,
  contentText,
  describeToolCall,
  shorten,
  toolNamesById,
} from "./transcript.js";

export interface ExtractiveSummarizerOptions {
  /** Longest bullet line, in characters (code points); longer sentences are cut at a word. Default 200. */
  maxLineChars?: number;
  /** Longest tool result kept on a tool line, in characters (code points). Default 160. */
  maxToolResultChars?: number;
}

type Section = "goals" | "facts" | "decisions" | "preferences" | "openQuestions" | "context";

const SECTION_TITLES: Record<Section, string> = {
  goals: "Goals",
  facts: "Facts",
  decisions: "Decisions",
  preferences: "Preferences",
  openQuestions: "Open questions",
  context: "Context",
};
const SECTION_ORDER: readonly Section[] = [
  "goals",
  "facts",
  "decisions",
  "preferences",
  "openQuestions",
  "context",
];
const SECTION_BY_TITLE = new Map(
  SECTION_ORDER.map((section) => [SECTION_TITLES[section].toLowerCase(), section]),
);

/**
 * What survives a tight budget longest. A decision or a goal outlives any single fact; facts rank by
 * the details they carry (a price beats a bare number beats a name), see `factPriority`.
 */
const BASE_PRIORITY: Record<Section, number> = {
  decisions: 100,
  goals: 90,
  preferences: 80,
  openQuestions: 70,
  facts: 30,
  context: 10,
};
const TOOL_BASE_PRIORITY = 45;
/** Any other statement of the user: context a later turn may need, dropped first. */
const USER_STATEMENT_PRIORITY = 20;
/** A sentence of a free-text previous summary (for example the OpenAI summarizer's) is already distilled. */
const CARRIED_SENTENCE_PRIORITY = 35;

type Speaker = "user" | "assistant" | "tool" | "system";

/** One line of the summary. Exported for the tests of the fitting algorithms only. */
export interface Item {
  section: Section;
  /** Who said it; null for sentences carried from a free-text previous summary. */
  speaker: Speaker | null;
  text: string;
  priority: number;
  /** Chronological order: previous-summary items first, then the new messages' items. */
  position: number;
}

/** Matches any of `alternatives` as whole words; `\b` is ASCII-only in JS, so letters are checked by Unicode class. */
function phrases(...alternatives: string[]): RegExp {
  return new RegExp(`(?<![\\p{L}\\p{N}])(?:${alternatives.join("|")})(?![\\p{L}\\p{N}])`, "iu");
}

const DECISION = phrases(
  "let'?s go (?:with|for)",
  "let us go with",
  "(?:i|we)(?:'ll| will) (?:take|go with|get|buy|order|book|choose)",
  "(?:i|we)(?:'ve| have)? decided",
  "decided",
  "go ahead with",
  "(?:i|we|they|the user|he|she) (?:chose|picked|opted for)",
  "(?:has|have) (?:chosen|picked|opted for)",
  "(?:i'm|i am|we're|we are) going (?:with|for)",
  "settled on",
  "(?:book|order|reserve) (?:it|that|this|them)",
  "ich nehme",
  "nehmen wir",
  "wir nehmen",
  "ich habe mich (?:für|entschieden)",
  "ich entscheide mich",
  "entschieden",
  "(?:buchen|bestellen) sie",
  "je prends",
  "on prend",
  "je vais prendre",
  "je choisis",
  "j'ai choisi",
  "(?:j'ai|nous avons|on a) décidé",
  "on part sur",
  "va pour",
  "me quedo con",
  "he decidido",
  "ho deciso",
  "prendo",
);

const GOAL = phrases(
  "(?:i'm|i am|we're|we are) (?:looking|searching|shopping) for",
  "looking for",
  "(?:i|we)(?: (?:also|really|still|just|now|definitely))? (?:want|need)",
  "(?:i|we)(?:'d| would)(?: (?:also|really))? (?:like|love)",
  "(?:i'm|i am|we're|we are) (?:trying|planning|hoping) to",
  "(?:i|we) plan to",
  "help me",
  "my goal",
  "(?:the )?user (?:wants|needs|is looking for|would like|is planning)",
  "(?:ich|wir) (?:möchte|möchten|will|wollen|brauche|brauchen|suche|suchen|hätte gern|würde gern)",
  "(?:ich bin|wir sind) auf der suche",
  "mein ziel",
  "(?:je|nous) (?:veux|voulons|voudrais|voudrions|cherche|cherchons|recherche|souhaite|souhaitons)",
  "j'ai besoin",
  "nous avons besoin",
  "on cherche",
  "mon objectif",
  "quiero",
  "necesito",
  "busco",
  "vorrei",
  "cerco",
  "ho bisogno",
);

const PREFERENCE = phrases(
  "prefer(?:s|red|ably|ence)?",
  "(?:i|we)(?:'d| would) rather",
  "(?:i|we) (?:really )?(?:like|love|hate|dislike)",
  "rather than",
  "must(?:n't| not)?",
  "ha(?:s|ve) to",
  "should (?:be|have)",
  "(?:don't|do not|doesn't|does not) (?:want|like|need)",
  "no more than",
  "avoid",
  "only",
  "without",
  "not too",
  "budget",
  "important",
  "at the latest",
  "no later than",
  "lieber",
  "bevorzug\\p{L}*",
  "am liebsten",
  "nicht mehr als",
  "muss",
  "müssen",
  "soll(?:te|ten)?",
  "kein(?:e|en|er)?",
  "ohne",
  "nur",
  "wichtig",
  "spätestens",
  "préf[eè]r\\p{L}*",
  "plutôt",
  "pas plus de",
  "doit",
  "doivent",
  "il faut",
  "je ne veux pas",
  "sans",
  "seulement",
  "uniquement",
  "prefiero",
  "preferisco",
);

const CURRENCY_WORD = "chf|eur|usd|gbp|sfr|fr\\.|euros?|dollars?|francs?|franken|pounds?|livres?|\\p{Sc}";

/** A limit with a number behind it: `under $1,500`, `höchstens 800 CHF`, `moins de 1 000 €`. */
const LIMIT = new RegExp(
  "(?<![\\p{L}\\p{N}])(?:under|below|less than|at most|max(?:imum)?\\.?|up to|within|at least|min(?:imum)?\\.?|over|more than|" +
    "unter|bis|höchstens|maximal|mindestens|weniger als|moins de|au maximum|au plus|au moins|jusqu'à|sous|menos de|meno di)" +
    `\\s*(?:${CURRENCY_WORD}|\\p{N})`,
  "iu",
);

/** `$1,299`, `1.299 €`, `CHF 800`, `800.- Fr.`, `1 200 euros`. */
const PRICE = new RegExp(
  `(?:(?<![\\p{L}])(?:${CURRENCY_WORD})\\s?\\p{N})|(?:\\p{N}[\\p{N}',.\\s]*(?:-|–)?\\s?(?:${CURRENCY_WORD})(?![\\p{L}]))`,
  "iu",
);
const NUMBER = /\p{N}/u;
/** Model codes and order numbers: a token with both a digit and an upper-case letter (M3, WH-1000XM5, A-4471). */
const MODEL_CODE =
  /(?<![\p{L}\p{N}])(?=[\p{L}\p{N}-]*\p{N})(?=[\p{L}\p{N}-]*\p{Lu})[\p{L}\p{N}]+(?:-[\p{L}\p{N}]+)*(?![\p{L}\p{N}])/u;
const ACRONYM = /(?<![\p{L}\p{N}])\p{Lu}{2,}(?![\p{L}\p{N}])/u;
const QUESTION = /[?？¿]/u;
/** Small talk: not worth a line unless it also carries a detail. */
const FILLER =
  /^(?:thanks?|thank you|ok(?:ay)?|great|perfect|cool|nice|sure|yes|no|hi|hello|hey|bye|danke|merci|super|gracias|grazie|bonjour|hallo)(?![\p{L}\p{N}])/iu;

/**
 * Words too common to tell whether a later answer addresses a question. Only words of four or more
 * letters are compared at all, so shorter ones need no entry.
 */
const STOPWORDS = new Set(
  (
    "what which when where does doesn have that this with there their about would could should will your from also " +
    "they them then than been were into some more much many other just like please know tell want need there's " +
    "haben dass diese dieser dieses wann welche welcher welches wird kann können gibt auch noch eine einen einem " +
    "einer sind oder aber bitte viel wieviel könnten würde est-ce quel quelle quels quelles avec pour dans vous nous " +
    "elle sont avez peut pouvez aussi mais cette combien quoi est-il"
  ).split(" "),
);

/** The lines of the summaries of the sessions a worker folds in turn; a line has at most ~200 chars. */
const CARRIED_BULLET_CACHE_SIZE = 2048;

const SENTENCES = new Intl.Segmenter("und", { granularity: "sentence" });

/**
 * The offline default summarizer: picks the sentences a later turn needs (goals, decisions,
 * preferences and constraints, open questions, and facts carrying names, numbers and prices) and
 * writes them as short bullets under fixed section headings, with the speaker's role.
 *
 * Deterministic: the same request gives the same text. No model, no network.
 *
 * Rolling: the previous summary's bullets are carried into the new one. When the material exceeds
 * `maxSummaryTokens`, the lowest-priority lines go first and, among equals, the oldest; `merged`
 * reports that something was cut. A free-text previous summary (from the OpenAI summarizer) is
 * split into sentences and carried the same way.
 */
export class ExtractiveSummarizer implements Summarizer {
  readonly name = "extractive" as const;
  readonly #maxLineChars: number;
  readonly #maxToolResultChars: number;
  /**
   * Items of recently carried bullet lines, by heading and line. A line stays in the rolling summary
   * for many folds, and rating a fact line again (its price, number and name patterns) each time
   * would cost a good part of a fold.
   */
  readonly #carriedBullets = new LruCache<string, Omit<Item, "position">>(CARRIED_BULLET_CACHE_SIZE);

  constructor(options: ExtractiveSummarizerOptions = {}) {
    const { maxLineChars = 200, maxToolResultChars = 160 } = options;
    if (!Number.isSafeInteger(maxLineChars) || maxLineChars < 20) {
      throw new ValidationError("summarizer.maxLineChars", "must be an integer of at least 20");
    }
    if (!Number.isSafeInteger(maxToolResultChars) || maxToolResultChars < 10) {
      throw new ValidationError("summarizer.maxToolResultChars", "must be an integer of at least 10");
    }
    this.#maxLineChars = maxLineChars;
    this.#maxToolResultChars = maxToolResultChars;
  }

  async summarize(request: SummarizeRequest): Promise<SummarizeResult> {
    const started = performance.now();
    validateSummarizeRequest(request);
    const { previousSummary, messages, maxSummaryTokens, countTokens } = request;

    const answers = new AnswerIndex(messages);
    const carried = this.#parsePreviousSummary(previousSummary ?? "").filter(
      (item) => item.section !== "openQuestions" || !answers.answers(item.text, -1),
    );
    let items = dedupe([...carried, ...this.#extract(messages, carried.length, answers)]);
    // A fallback line carried from an earlier round is noise once there is real material.
    if (items.some((item) => item.section !== "context"))
      items = items.filter((item) => item.section !== "context");
    if (items.length === 0) items = [this.#fallback(messages)];

    const { text, merged, tokens } = fitToBudget(items, maxSummaryTokens, countTokens);
    // The messages were counted when they were written: their stored counts are what was read.
    const inputTokens =
      (previousSummary ? countTokens(previousSummary) : 0) +
      messages.reduce((sum, message) => sum + message.tokens, 0);
    return {
      text,
      summarizer: "extractive",
      model: null,
      inputTokens,
      outputTokens: tokens,
      merged,
      latencyMs: performance.now() - started,
    };
  }

  #parsePreviousSummary(summary: string): Item[] {
    const items: Item[] = [];
    let section: Section | null = null;
    for (const rawLine of summary.split(/\r?\n/u)) {
      const line = rawLine.trim();
      if (line.length === 0) continue;
      // Markdown decoration (`## Goals:`, `**Facts:**`) is how a model tends to write our headings.
      const heading = /^([\p{L}]+(?: [\p{L}]+){0,3}):$/u.exec(line.replace(/^#+\s*|\*\*|__/gu, ""));
      if (heading) {
        // An unknown heading ("Summary:") carries nothing; the bullets under it are read as free text.
        section = SECTION_BY_TITLE.get(heading[1]!.toLowerCase()) ?? null;
        continue;
      }
      const bullet = /^(?:[-*•]|\d+[.)])\s+(.*)$/u.exec(line);
      if (bullet && section) {
        items.push({ ...this.#carriedBullet(section, bullet[1]!), position: items.length });
        continue;
      }
      // Free text (another summarizer's output, or a hand-written summary): every sentence of it was
      // already judged worth keeping, so none is dropped for lack of a signal.
      for (const sentence of splitSentences(bullet ? bullet[1]! : line)) {
        const classified = classify(sentence, null);
        const text = this.#sentenceLine(sentence);
        items.push(
          classified
            ? { ...classified, speaker: null, text, position: items.length }
            : {
                section: "facts",
                speaker: null,
                text,
                priority: CARRIED_SENTENCE_PRIORITY,
                position: items.length,
              },
        );
      }
    }
    return items;
  }

  /** The item of a bullet line under a known heading, remembered (see #carriedBullets). */
  #carriedBullet(section: Section, content: string): Omit<Item, "position"> {
    const key = `${section}\n${content}`;
    let item = this.#carriedBullets.get(key);
    if (item === undefined) {
      const spoken = /^(user|assistant|tool|system):\s+(.*)$/u.exec(content);
      const text = this.#line(spoken ? spoken[2]! : content);
      const speaker = spoken ? (spoken[1] as Speaker) : null;
      const priority =
        section === "facts"
          ? factPriority(text, speaker === "tool" ? TOOL_BASE_PRIORITY : BASE_PRIORITY.facts)
          : BASE_PRIORITY[section];
      item = { section, speaker, text, priority };
      this.#carriedBullets.set(key, item);
    }
    return item;
  }

  #extract(messages: readonly StoredMessage[], firstPosition: number, answers: AnswerIndex): Item[] {
    const items: Item[] = [];
    const push = (item: Omit<Item, "position">) =>
      items.push({ ...item, position: firstPosition + items.length });
    const resultsById = new Map<string, StoredMessage>();
    for (const message of messages) {
      if (message.role === "tool" && message.tool_call_id) resultsById.set(message.tool_call_id, message);
    }
    const toolNames = toolNamesById(messages);
    const pairedResults = new Set<StoredMessage>();

    messages.forEach((message, index) => {
      if (message.role === "tool") {
        if (pairedResults.has(message)) return;
        const tool =
          message.name ?? (message.tool_call_id ? toolNames.get(message.tool_call_id) : undefined) ?? "tool";
        const text = this.#line(`${tool} → ${this.#toolResult(contentText(message.content))}`);
        push({ section: "facts", speaker: "tool", text, priority: factPriority(text, TOOL_BASE_PRIORITY) });
        return;
      }
      const speaker: Speaker = message.role;
      for (const sentence of splitSentences(contentText(message.content))) {
        const classified = classify(sentence, speaker);
        if (!classified) continue;
        if (classified.section === "openQuestions" && answers.answers(sentence, index)) {
          continue;
        }
        push({ ...classified, speaker, text: this.#sentenceLine(sentence) });
      }
      for (const call of message.tool_calls ?? []) {
        const result = resultsById.get(call.id);
        if (result) pairedResults.add(result);
        const text = this.#line(this.#toolLine(call, result));
        push({ section: "facts", speaker: "tool", text, priority: factPriority(text, TOOL_BASE_PRIORITY) });
      }
    });
    return items;
  }

  #toolLine(call: ToolCall, result: StoredMessage | undefined): string {
    const called = describeToolCall(call, 80);
    return result
      ? `${called} → ${this.#toolResult(contentText(result.content))}`
      : `${called} (no result yet)`;
  }

  /** Scalar fields of a JSON object as `key: value`, which reads better and cuts cleaner than raw JSON. */
  #toolResult(content: string): string {
    let parsed: unknown;
    try {
      parsed = JSON.parse(content);
    } catch {
      return shorten(collapseWhitespace(content), this.#maxToolResultChars);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      return shorten(JSON.stringify(parsed), this.#maxToolResultChars);
    }
    const fields = Object.entries(parsed).map(([key, value]) =>
      value !== null && typeof value === "object"
        ? `${key}: ${JSON.stringify(value)}`
        : `${key}: ${String(value)}`,
    );
    return shorten(fields.join("; "), this.#maxToolResultChars);
  }

  #line(text: string): string {
    return shorten(collapseWhitespace(text), this.#maxLineChars);
  }

  /** #line of a sentence of splitSentences, whose whitespace is collapsed already. */
  #sentenceLine(sentence: string): string {
    return shorten(sentence, this.#maxLineChars);
  }

  /** Nothing scored: keep the last thing the user said, so the summary is never empty. */
  #fallback(messages: readonly StoredMessage[]): Item {
    const withText = messages.filter((message) => contentText(message.content).trim().length > 0);
    const last = withText.findLast((message) => message.role === "user") ?? withText.at(-1);
    if (!last) {
      return {
        section: "context",
        speaker: null,
        text: `${messages.length} message(s) without text`,
        priority: BASE_PRIORITY.context,
        position: 0,
      };
    }
    return {
      section: "context",
      speaker: last.role,
      text: this.#line(contentText(last.content)),
      priority: BASE_PRIORITY.context,
      position: 0,
    };
  }
}

/**
 * What the sentence segmenter (Unicode UAX #29) can break after: a Sentence_Terminal (its STerm and
 * ATerm), Sep, CR or LF. Without one, a line is one sentence, and segmenting it (a good part of a
 * fold) can be skipped.
 */
const SENTENCE_BREAK = /[\p{Sentence_Terminal}\r\n\u0085\u2028\u2029]/u;

/** The sentences of a text, whitespace collapsed, without list markers. Exported for tests. */
export function splitSentences(text: string): string[] {
  const sentences: string[] = [];
  for (const line of text.split(/\r?\n/u)) {
    const segments = SENTENCE_BREAK.test(line) ? SENTENCES.segment(line) : [{ segment: line }];
    for (const { segment } of segments) {
      const sentence = collapseWhitespace(segment).replace(/^[-*•]\s+/u, "");
      if (/[\p{L}\p{N}]/u.test(sentence)) sentences.push(sentence);
    }
  }
  return sentences;
}

/**
 * The section and priority of a sentence, or null when it is not worth a line. Goals, decisions,
 * preferences and questions are the user's (or, for free text, anyone's); the assistant and tools
 * contribute facts only, because an assistant's "I need to check" is no goal of the user's.
 */
function classify(
  rawSentence: string,
  speaker: Speaker | null,
): Omit<Item, "position" | "speaker" | "text"> | null {
  const sentence = rawSentence.replace(/[’‘`]/gu, "'");
  const userSide = speaker === "user" || speaker === null;
  if (userSide) {
    if (speaker === "user" && QUESTION.test(sentence))
      return { section: "openQuestions", priority: BASE_PRIORITY.openQuestions };
    if (DECISION.test(sentence)) return { section: "decisions", priority: BASE_PRIORITY.decisions };
    if (GOAL.test(sentence)) return { section: "goals", priority: BASE_PRIORITY.goals };
    if (PREFERENCE.test(sentence) || LIMIT.test(sentence)) {
      return { section: "preferences", priority: BASE_PRIORITY.preferences };
    }
  }
  const detailed = detailPriority(sentence, BASE_PRIORITY.facts + (speaker === "user" ? 5 : 0));
  if (detailed !== null) return { section: "facts", priority: detailed };
  if (speaker === "user" && !FILLER.test(sentence) && sentence.split(/\s+/u).length >= 5) {
    return { section: "facts", priority: USER_STATEMENT_PRIORITY };
  }
  return null;
}

/**
 * A model code, an acronym or a name: with a number, what makes a sentence a fact. A model code has
 * a digit, so `hasNumber` (NUMBER's answer) spares its costly pattern; the cheapest test goes first.
 */
function isNamed(text: string, hasNumber: boolean): boolean {
  return hasName(text) || ACRONYM.test(text) || (hasNumber && MODEL_CODE.test(text));
}

/**
 * A capitalized word that does not open the sentence (so likely a name), other than the pronoun I
 * (unless quoted). A word that does not open the sentence is one after whitespace. Exported for tests.
 */
export function hasName(sentence: string): boolean {
  return NAME.test(sentence);
}

const NAME = /(?<=\s)(?:["'(]\p{Lu}|(?!I(?:'|\s|$))\p{Lu})/u;

function factPriority(text: string, base: number): number {
  const number = NUMBER.test(text);
  return priorityByDetails(text, base, number, isNamed(text, number));
}

/** factPriority, or null for a text without any detail. Tests each pattern once. */
function detailPriority(text: string, base: number): number | null {
  const number = NUMBER.test(text);
  const named = isNamed(text, number);
  return number || named ? priorityByDetails(text, base, number, named) : null;
}

function priorityByDetails(text: string, base: number, number: boolean, named: boolean): number {
  let priority = base;
  // Both forms of a price have a digit.
  if (number && PRICE.test(text)) priority += 25;
  if (number) priority += 10;
  if (named) priority += 10;
  return Math.min(priority, BASE_PRIORITY.openQuestions - 1);
}

/**
 * A crude stem (first five letters, lower case) of each word that can tell a question's topic:
 * words of four letters or more that are not stopwords, and any token with a digit or an acronym.
 * Exported for tests.
 */
export function topicStems(text: string): Set<string> {
  const stems = new Set<string>();
  if (NON_ASCII.test(text)) {
    for (const match of text.normalize("NFC").matchAll(/[\p{L}\p{N}][\p{L}\p{N}'-]*/gu)) {
      const word = match[0];
      const lower = word.toLowerCase();
      const telling =
        /\p{N}/u.test(word) ||
        /^\p{Lu}{2,}$/u.test(word) ||
        (codePointOffset(word, 3) < word.length && !STOPWORDS.has(lower));
      if (telling) stems.add(lower.slice(0, codePointOffset(lower, 5)));
    }
    return stems;
  }
  // ASCII text, most of it: NFC changes nothing, letters are A-Z and a-z, digits 0-9, and a code
  // unit is a code point, so the same words are found without a regular expression.
  const length = text.length;
  let end = 0;
  while (end < length) {
    const start = end;
    let code = text.charCodeAt(end);
    if (!isAsciiLetterOrDigit(code)) {
      end++;
      continue;
    }
    let digit = false;
    let upper = true;
    for (; end < length; end++) {
      code = text.charCodeAt(end);
      if (code >= 0x30 && code <= 0x39) {
        digit = true;
        upper = false;
      } else if (code >= 0x61 && code <= 0x7a) {
        upper = false;
      } else if (code === 0x27 || code === 0x2d) {
        upper = false;
      } else if (code < 0x41 || code > 0x5a) {
        break;
      }
    }
    const wordLength = end - start;
    if (digit || (upper && wordLength >= 2)) {
      stems.add(text.slice(start, Math.min(end, start + 5)).toLowerCase());
    } else if (wordLength >= 4) {
      const lower = text.slice(start, end).toLowerCase();
      if (!STOPWORDS.has(lower)) stems.add(lower.slice(0, 5));
    }
  }
  return stems;
}

const NON_ASCII = /\P{ASCII}/u;

function isAsciiLetterOrDigit(code: number): boolean {
  return (code >= 0x61 && code <= 0x7a) || (code >= 0x41 && code <= 0x5a) || (code >= 0x30 && code <= 0x39);
}

/**
 * Where the assistant last used each topic stem, so that "is a question at message i answered by a
 * later reply" costs one lookup per stem instead of a rescan of the later messages per question.
 * Built on the first question, as most folds have none.
 */
class AnswerIndex {
  readonly #messages: readonly StoredMessage[];
  #lastUse: Map<string, number> | null = null;
  #lastReply = -1;

  constructor(messages: readonly StoredMessage[]) {
    this.#messages = messages;
  }

  /**
   * Whether an assistant message after `index` (-1: any) shares a topic word with the question, or,
   * for a question without one ("Why?"), said anything at all. A reply on another topic ("Let me
   * check.") leaves it open.
   */
  answers(question: string, index: number): boolean {
    const lastUse = this.#index();
    if (this.#lastReply <= index) return false;
    const stems = topicStems(question);
    if (stems.size === 0) return true;
    for (const stem of stems) if ((lastUse.get(stem) ?? -1) > index) return true;
    return false;
  }

  #index(): Map<string, number> {
    if (this.#lastUse) return this.#lastUse;
    const lastUse = new Map<string, number>();
    this.#messages.forEach((message, index) => {
      if (message.role !== "assistant") return;
      const text = contentText(message.content);
      if (text.trim().length === 0) return;
      this.#lastReply = index;
      for (const stem of topicStems(text)) lastUse.set(stem, index);
    });
    this.#lastUse = lastUse;
    return lastUse;
  }
}

/** One line per distinct sentence: the higher-priority copy wins, the newer on a tie. */
function dedupe(items: readonly Item[]): Item[] {
  const byKey = new Map<string, Item>();
  for (const item of items) {
    // Whitespace runs become one space as in collapseWhitespace, which item texts went through.
    const key = item.text
      .toLowerCase()
      .replace(/[\s.!?…。！？]+$/u, "")
      .replace(/ \s+|[^\S ]\s*/gu, " ");
    const existing = byKey.get(key);
    if (!existing || item.priority >= existing.priority) {
      if (existing) byKey.delete(key);
      byKey.set(key, item);
    }
  }
  return [...byKey.values()].sort((a, b) => a.position - b.position);
}

function render(items: readonly Item[]): string {
  const lines: string[] = [];
  for (const section of SECTION_ORDER) {
    const inSection = items.filter((item) => item.section === section);
    if (inSection.length === 0) continue;
    lines.push(`${SECTION_TITLES[section]}:`);
    for (const item of inSection) lines.push(bullet(item));
  }
  return lines.join("\n");
}

function bullet(item: Item): string {
  return item.speaker ? `- ${item.speaker}: ${item.text}` : `- ${item.text}`;
}

/** A rendered summary with its exact tokens (by the request's `countTokens`). */
export interface FittedSummary {
  text: string;
  merged: boolean;
  tokens: number;
}

/**
 * Drops lines, lowest priority and then oldest first, until the rendered summary fits, like
 * `fitToBudgetByWholeText` but counting each line once instead of the whole text per probe.
 *
 * In tiktoken's split patterns (o200k_base, cl100k_base) nothing looks behind, and a piece can run
 * on past a "\n" only into White_Space, "\r", "\n" or (o200k's punctuation piece) "/". Every line
 * of a rendering starts with "-" or a heading's capital letter, so a piece ends at each line break,
 * and the tokens of a rendering are the sum of its lines' tokens, each counted with its "\n" but
 * the last. The chosen text is counted once more as a whole: a counter that does not add up that way
 * (no tiktoken encoding) gets the whole-text search instead, so the result is the same either way.
 */
export function fitToBudget(
  items: readonly Item[],
  maxTokens: number,
  countTokens: (text: string) => number,
): FittedSummary {
  const tokensOf = lineTokenSums(items, countTokens);
  let kept: readonly Item[] = items;
  let expected = tokensOf(() => true);
  if (expected > maxTokens) {
    const dropRank = dropRanks(items);
    const keptAfter = (dropCount: number) => (index: number) => dropRank[index]! >= dropCount;
    const dropCount = fewestDropsThatFit(items.length, (count) => tokensOf(keptAfter(count)) <= maxTokens);
    // Not even one line fits whole: cutting one is rare and counts whole texts anyway.
    if (dropCount === null) return fitToBudgetByWholeText(items, maxTokens, countTokens);
    const isKept = keptAfter(dropCount);
    kept = items.filter((_, index) => isKept(index));
    expected = tokensOf(isKept);
  }
  const text = render(kept);
  const tokens = countTokens(text);
  if (tokens !== expected) return fitToBudgetByWholeText(items, maxTokens, countTokens);
  return { text, merged: kept !== items, tokens };
}

/**
 * A function giving the tokens of the rendering of the items for which `isKept(index)` holds, from
 * the tokens of its lines (see fitToBudget). Each line is counted at most twice per call.
 */
function lineTokenSums(
  items: readonly Item[],
  countTokens: (text: string) => number,
): (isKept: (index: number) => boolean) => number {
  const bullets = items.map(bullet);
  const withBreak = bullets.map((line) => countTokens(`${line}\n`));
  const alone: (number | undefined)[] = [];
  const lastLine = (index: number) => {
    alone[index] ??= countTokens(bullets[index]!);
    return alone[index];
  };
  const headingWithBreak: (number | undefined)[] = [];
  const heading = (section: number) => {
    headingWithBreak[section] ??= countTokens(`${SECTION_TITLES[SECTION_ORDER[section]!]}:\n`);
    return headingWithBreak[section];
  };
  const bySection = SECTION_ORDER.map((): number[] => []);
  items.forEach((item, index) => {
    bySection[SECTION_ORDER.indexOf(item.section)]!.push(index);
  });
  return (isKept) => {
    let tokens = 0;
    let last = -1;
    for (let section = 0; section < bySection.length; section++) {
      const before = last;
      for (const index of bySection[section]!) {
        if (!isKept(index)) continue;
        tokens += withBreak[index]!;
        last = index;
      }
      if (last !== before) tokens += heading(section);
    }
    return last === -1 ? 0 : tokens - withBreak[last]! + lastLine(last);
  };
}

/** Each item's place in the drop order: lowest priority first, then oldest. */
function dropRanks(items: readonly Item[]): number[] {
  const order = items
    .map((_, index) => index)
    .sort((a, b) => items[a]!.priority - items[b]!.priority || items[a]!.position - items[b]!.position);
  const ranks = new Array<number>(items.length);
  order.forEach((index, rank) => {
    ranks[index] = rank;
  });
  return ranks;
}

/**
 * The fewest lines to drop (at least one, keeping at least one) after which the summary fits, or
 * null. Dropping more lines never makes the text longer, so a binary search needs O(log n) probes.
 * Both fitting algorithms search with this one function, so equal answers to the probes give the
 * same result.
 */
function fewestDropsThatFit(itemCount: number, fits: (dropCount: number) => boolean): number | null {
  let low = 1;
  let high = itemCount - 1;
  let best: number | null = null;
  while (low <= high) {
    const middle = (low + high) >> 1;
    if (fits(middle)) {
      best = middle;
      high = middle - 1;
    } else {
      low = middle + 1;
    }
  }
  return best;
}

/**
 * Drops lines, lowest priority and then oldest first, until the rendered summary fits, counting
 * the whole rendered text of every probe: O(log n) counts of the whole text. Exact for any counter.
 */
export function fitToBudgetByWholeText(
  items: readonly Item[],
  maxTokens: number,
  countTokens: (text: string) => number,
): FittedSummary {
  const full = render(items);
  const fullTokens = countTokens(full);
  if (fullTokens <= maxTokens) return { text: full, merged: false, tokens: fullTokens };

  const dropRank = dropRanks(items);
  const textAfterDropping = (dropCount: number) =>
    render(items.filter((_, index) => dropRank[index]! >= dropCount));
  const dropCount = fewestDropsThatFit(
    items.length,
    (count) => countTokens(textAfterDropping(count)) <= maxTokens,
  );
  const text =
    dropCount === null
      ? truncateSingle(items[dropRank.indexOf(items.length - 1)]!, maxTokens, countTokens)
      : textAfterDropping(dropCount);
  return { text, merged: true, tokens: countTokens(text) };
}

/** Not even the most important line fits whole: keep its heading and role if they fit, and cut its text. */
function truncateSingle(item: Item, maxTokens: number, countTokens: (text: string) => number): string {
  const prefix = `${SECTION_TITLES[item.section]}:\n${item.speaker ? `- ${item.speaker}: ` : "- "}`;
  for (let textBudget = maxTokens - countTokens(prefix); textBudget > 0; textBudget--) {
    const text = prefix + cutToTokenBudget(item.text, textBudget, countTokens);
    if (countTokens(text) <= maxTokens) return text;
  }
  return cutToTokenBudget(item.text, maxTokens, countTokens);
}

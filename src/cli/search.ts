import type { SearchOptions, SearchResults } from "../manager/memory-manager.js";
import { type Command, integerOption, parseCommandLine, write } from "./command.js";
import { openReadThrough } from "./open-memory.js";

const HELP = `Usage: swisper-memory search <words> [options]

Full-text search of the tenant's messages (every session), most relevant first: each hit's
session, seq, role and a snippet with the matches in <mark> tags. <words> in web-search syntax:
all words, "a phrase" in quotes, or, -word. Reads only. Opens the storage the environment
configures (DATABASE_URL or MEMORY_DATA_DIR), or, with --url or MEMORY_URL, asks that running
service (GET /v1/search; MEMORY_API_KEY is sent as the key).

Options:
  --url <url>          a running service to ask (default MEMORY_URL)
  --tenant <name>      tenant (default "default"; with --url the API key decides)
  --session <id>       only this session's messages
  --user <id>          only the messages of this user's sessions
  --role <role>        only messages of this role (system, user, assistant, tool)
  --limit <n>          hits per page, 1-100 (default 20)
  --cursor <cursor>    the next page of the same search
  --mode <mode>        words (default: full text, ranked) or substring (the text as typed,
                       case-insensitive; a trigram index where pg_trgm is installed, else a
                       bounded scan, said on stderr)
  --language <name>    mode words: a text search configuration of the database, e.g. english
                       (default MEMORY_SEARCH_LANGUAGE, else simple)
  --json               one JSON object per hit (JSON Lines)
  -h, --help           this help

When there are more hits, the next page's cursor is printed on stderr.`;

export const searchCommand: Command = {
  name: "search",
  summary: "Search the tenant's messages (full text, ranked)",
  help: HELP,
  async run(args, { env, stdout, stderr }) {
    const { values, positionals } = parseCommandLine(
      args,
      {
        url: { type: "string" },
        tenant: { type: "string" },
        session: { type: "string" },
        user: { type: "string" },
        role: { type: "string" },
        limit: { type: "string" },
        cursor: { type: "string" },
        mode: { type: "string" },
        language: { type: "string" },
        json: { type: "boolean" },
      },
      { min: 1, max: 1 },
    );
    const options: SearchOptions = {
      // biome-ignore lint/style/noNonNullAssertion: parseCommandLine required one positional
      q: positionals[0]!,
      limit: integerOption(values.limit, "limit", 20, 1, 100),
      ...(values.session !== undefined ? { session_id: values.session } : {}),
      ...(values.user !== undefined ? { user_id: values.user } : {}),
      ...(values.role !== undefined ? { role: values.role as SearchOptions["role"] } : {}),
      ...(values.cursor !== undefined ? { cursor: values.cursor } : {}),
      ...(values.mode !== undefined ? { mode: values.mode as SearchOptions["mode"] } : {}),
      ...(values.language !== undefined ? { language: values.language } : {}),
    };
    const search = await openReadThrough(env, values, "/v1/search", (memory, query: SearchOptions) =>
      memory.searchMessages(query),
    );
    let results: SearchResults;
    try {
      results = await search.read(options);
    } finally {
      await search.close();
    }
    for (const hit of results.results) {
      write(
        stdout,
        values.json ? JSON.stringify(hit) : `${hit.session_id} #${hit.seq} ${hit.role}: ${hit.snippet}`,
      );
    }
    if (results.next_cursor !== null) write(stderr, `next cursor: ${results.next_cursor}`);
    if (results.scan_limited) {
      write(stderr, "scan limited: without the pg_trgm index only part of the messages was read");
    }
    return 0;
  },
};

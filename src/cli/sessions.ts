import type { ListSessionsOptions, SessionPage } from "../manager/memory-manager.js";
import { SESSION_ORDERS, type SessionOrder } from "../schemas/sessions.js";
import { type Command, integerOption, parseCommandLine, UsageError, write } from "./command.js";
import { openReadThrough } from "./open-memory.js";

const HELP = `Usage: swisper-memory sessions [options]

Lists the tenant's sessions, most recently updated first: id, last update, message count, title
and the newest user message. Reads only. Opens the storage the environment configures
(DATABASE_URL or MEMORY_DATA_DIR), or, with --url or MEMORY_URL, asks that running service
(GET /v1/sessions; MEMORY_API_KEY is sent as the key).

Options:
  --url <url>            a running service to ask (default MEMORY_URL)
  --tenant <name>        tenant (default "default"; with --url the API key decides)
  --limit <n>            sessions per page, 1-100 (default 20)
  --order <order>        updated_desc (default) or created_desc
  --user <id>            only this user's sessions
  --updated-since <iso>  only sessions updated at or after this instant
  --cursor <cursor>      continue after the page that printed this next cursor
  --all                  every page, not just the first
  --json                 one JSON object per session (JSON Lines)
  -h, --help             this help

Without --all, the next page's cursor is printed on stderr.`;

export const sessionsCommand: Command = {
  name: "sessions",
  summary: "List a tenant's sessions (newest first, paged)",
  help: HELP,
  async run(args, { env, stdout, stderr }) {
    const { values } = parseCommandLine(
      args,
      {
        url: { type: "string" },
        tenant: { type: "string" },
        limit: { type: "string" },
        order: { type: "string" },
        user: { type: "string" },
        "updated-since": { type: "string" },
        cursor: { type: "string" },
        all: { type: "boolean" },
        json: { type: "boolean" },
      },
      { min: 0, max: 0 },
    );
    const order = values.order ?? "updated_desc";
    if (!(SESSION_ORDERS as readonly string[]).includes(order)) {
      throw new UsageError(`--order must be ${SESSION_ORDERS.join(" or ")}`);
    }
    const options: ListSessionsOptions = {
      limit: integerOption(values.limit, "limit", 20, 1, 100),
      order: order as SessionOrder,
      ...(values.user !== undefined ? { user_id: values.user } : {}),
      ...(values["updated-since"] !== undefined ? { updated_since: values["updated-since"] } : {}),
    };
    const listing = await openReadThrough(env, values, "/v1/sessions", (memory, page: ListSessionsOptions) =>
      memory.listSessions(page),
    );
    try {
      let cursor = values.cursor;
      for (;;) {
        const page = await listing.read({ ...options, ...(cursor !== undefined ? { cursor } : {}) });
        for (const session of page.sessions)
          write(stdout, values.json ? JSON.stringify(session) : line(session));
        if (page.next_cursor === null) return 0;
        if (!values.all) {
          write(stderr, `next cursor: ${page.next_cursor}`);
          return 0;
        }
        cursor = page.next_cursor;
      }
    } finally {
      await listing.close();
    }
  },
};

function line(session: SessionPage["sessions"][number]): string {
  const title = session.title ?? "(no title)";
  const last = session.last_user_message ? `  > ${session.last_user_message}` : "";
  const user = session.user_id !== null ? ` [${session.user_id}]` : "";
  return `${session.updated_at}  ${session.session_id}${user}  ${session.message_count} msgs  ${title}${last}`;
}

/**
 * A process that writes chat traffic and summarizes it with a slow summarizer, printing one JSON
 * line per event on stdout, until the fault test SIGKILLs it mid-summary:
 * `{"attempt": {session, id}}` before each write, `{"ack": {session, id, content, ack}}` after it,
 * `{"summarize": "start" | "end"}` around each summarizer call, `{"committed": n}` per summary.
 */
import { createMemoryManager } from "../../../src/manager/create-memory-manager.js";
import type { SummarizeRequest, SummarizeResult, Summarizer } from "../../../src/summarizer/index.js";
import { FlakySummarizer } from "../../support/test-summarizers.js";
import { quietLogger, SMALL_SESSIONS } from "./environment.js";

const print = (event: unknown) => process.stdout.write(`${JSON.stringify(event)}\n`);

const slow = new FlakySummarizer({ delayMs: 150 });
const announcing: Summarizer = {
  name: "extractive",
  async summarize(request: SummarizeRequest): Promise<SummarizeResult> {
    print({ summarize: "start" });
    try {
      return await slow.summarize(request);
    } finally {
      print({ summarize: "end" });
    }
  },
};

let committed = 0;
const manager = await createMemoryManager({
  database: process.env.CHILD_DATABASE_URL!,
  redis: process.env.CHILD_REDIS_URL!,
  keyPrefix: process.env.CHILD_KEY_PREFIX!,
  logger: quietLogger(),
  sessionDefaults: SMALL_SESSIONS,
  summarizer: announcing,
  summarization: {
    leaseMs: Number(process.env.CHILD_LEASE_MS),
    idleFinalizeAfterMs: 0,
    onJob(outcome) {
      if ("kind" in outcome && outcome.kind === "committed") print({ committed: ++committed });
    },
  },
});
const sessions = process.env.CHILD_SESSIONS!.split(",");
const words = "the laptop budget is under 1500 CHF and it should weigh less than 2kg please".split(" ");
for (let n = 0; ; n++) {
  const session = sessions[n % sessions.length]!;
  const id = `child-${n}`;
  const content = `${id} ${Array.from({ length: 25 }, (_, i) => words[(n + i) % words.length]).join(" ")}`;
  print({ attempt: { session, id } });
  const [ack] = await manager.addMessages(session, [{ role: n % 2 ? "assistant" : "user", content, id }]);
  print({ ack: { session, id, content, ack } });
  await new Promise((resolve) => setTimeout(resolve, 2));
}

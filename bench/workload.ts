/** The benchmarks' chat workload: the same one `swisper-memory bench` replays. */
export { chatTurn, ms, percentile, seededRandom as seeded, summarize } from "../src/cli/chat-workload.js";

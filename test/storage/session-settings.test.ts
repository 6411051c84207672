import { expect, it } from "vitest";
import { PostgresDatabase } from "../../src/storage/database.js";
import { useTestServers } from "../support/servers.js";

const servers = useTestServers();

// Each connection of the product's pool plans statements once (generic plans) and never JIT-
// compiles them: a generic plan costs `LIMIT $n` as a tenth of the table, and at a million
// sessions JIT turned a 1 ms listing page into 350 ms (npm run bench:sessions).
it("opens connections with generic plans and without JIT", async () => {
  if (!servers.database.url) return;
  const db = new PostgresDatabase({ connectionString: servers.database.url });
  try {
    const { rows } = await db.query<{ jit: string; plans: string }>(
      "SELECT current_setting('jit') AS jit, current_setting('plan_cache_mode') AS plans",
    );
    expect(rows[0]).toEqual({ jit: "off", plans: "force_generic_plan" });
  } finally {
    await db.close();
  }
});

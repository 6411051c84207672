import { databaseFromEnv } from "../manager/create-memory-manager.js";
import { migrate } from "../storage/migrator.js";
import { type Command, parseCommandLine, write } from "./command.js";

export const migrateCommand: Command = {
  name: "migrate",
  summary: "Apply pending schema migrations to DATABASE_URL (or the embedded database)",
  help: `Usage: swisper-memory migrate

Applies pending migrations, in order and under an advisory lock, to DATABASE_URL, or to the
embedded database in MEMORY_DATA_DIR (default ./.swisper-memory). Prints each migration's status.
Exit code 1 when a migration fails (the earlier ones stay applied).`,
  async run(args, { env, stdout, stderr }) {
    parseCommandLine(args, {}, { min: 0, max: 0 });
    const { database: db } = databaseFromEnv(env);
    try {
      const run = await migrate(db);
      for (const result of run.results) write(stdout, `${result.status.padEnd(16)} ${result.name}`);
      if (run.results.length === 0) write(stdout, "no migrations");
      if (run.error) {
        write(stderr, run.error.message);
        return 1;
      }
      return 0;
    } finally {
      await db.close();
    }
  },
};

import { readFileSync } from "node:fs";

/**
 * The node options a package.json script (`start`, `start:servers`) runs `serve` under: what users
 * start the service with, so that tests and benchmarks start it the same way.
 */
export function serveNodeOptions(script: "start" | "start:servers"): string[] {
  const packageJson = new URL("../../package.json", import.meta.url);
  const { scripts } = JSON.parse(readFileSync(packageJson, "utf8")) as { scripts: Record<string, string> };
  const options = /node ((?:--\S+ )*)dist\/cli\/main\.js serve/.exec(scripts[script] ?? "")?.[1];
  if (options === undefined)
    throw new Error(`package.json's ${script} script does not run serve: ${scripts[script]}`);
  return options.trim().split(" ");
}

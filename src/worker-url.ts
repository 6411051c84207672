import { fileURLToPath } from "node:url";

/**
 * The URL of the worker module `name` (without extension) beside the module at `moduleUrl` (pass
 * `import.meta.url`). From the compiled package it is the .js file; from the TypeScript sources
 * (tests, tsx) it is the .ts file, which a worker can load only after registering tsx's loader in
 * its own thread.
 */
export function workerModuleUrl(moduleUrl: string, name: string): URL {
  if (!moduleUrl.endsWith(".ts")) return new URL(`./${name}.js`, moduleUrl);
  const source = new URL(`./${name}.ts`, moduleUrl).href;
  const boot = `import { register } from ${JSON.stringify(import.meta.resolve("tsx/esm/api"))};
register();
await import(${JSON.stringify(source)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(boot)}`);
}

/**
 * The node arguments that run the module `name` beside `moduleUrl` as a process of its own: the
 * .js file from the compiled package, the .ts file with tsx's loader from the sources.
 */
export function processModuleArgs(moduleUrl: string, name: string): string[] {
  if (!moduleUrl.endsWith(".ts")) return [fileURLToPath(new URL(`./${name}.js`, moduleUrl))];
  return ["--import", import.meta.resolve("tsx"), fileURLToPath(new URL(`./${name}.ts`, moduleUrl))];
}

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
 * The node options a worker thread starts with: the process's own (a worker inherits them, so that
 * `--import`, `--conditions` or `--max-old-space-size` hold in it too), without `--input-type`,
 * which refuses to load a worker module from a file: a program run as `node --input-type=module -e`
 * could not start the embedded database.
 */
export function workerExecArgv(): string[] {
  const kept: string[] = [];
  for (let i = 0; i < process.execArgv.length; i++) {
    const arg = process.execArgv[i] as string;
    if (arg === "--input-type") i++;
    else if (!arg.startsWith("--input-type=")) kept.push(arg);
  }
  return kept;
}

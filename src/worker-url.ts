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

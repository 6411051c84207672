/**
 * How a worker thread of ours starts (the embedded database's, the summarizer's): the code to run
 * with `new Worker(code, { eval: true })`, which imports the worker module `name` (without
 * extension) beside the module at `moduleUrl` (pass `import.meta.url`). From the compiled package
 * that is the .js file; from the TypeScript sources (tests, tsx) the .ts file, after registering
 * tsx's loader in the worker's own thread.
 *
 * Why code and not the module's URL: a worker inherits the process's node options (so that
 * `--import`, `--conditions` or `--max-old-space-size` hold in it too), and with `--input-type`
 * among them (a program run as `node --input-type=module -e`) it refuses to start from a file.
 * Handing it the options minus that one fails otherwise: a worker refuses V8's options
 * (`--max-old-space-size`, `--stack-size`) given to it explicitly, though it inherits them. Code
 * is the string input `--input-type` is for, as a CommonJS script or a module alike.
 *
 * A module that fails to load is thrown again as an uncaught exception, so that it reaches the
 * worker's "error" event whatever the process's `--unhandled-rejections` mode.
 */
export function workerEntry(moduleUrl: string, name: string): string {
  const load = moduleUrl.endsWith(".ts")
    ? `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then(({ register }) => {
        register();
        return import(${JSON.stringify(new URL(`./${name}.ts`, moduleUrl).href)});
      })`
    : `import(${JSON.stringify(new URL(`./${name}.js`, moduleUrl).href)})`;
  return `${load}.catch((error) => setImmediate(() => { throw error; }));`;
}

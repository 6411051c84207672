import { Writable } from "node:stream";
import type { Environment } from "../../src/cli/command.js";
import { main } from "../../src/cli/main.js";

/** Collects what a command writes. */
export class Capture extends Writable {
  text = "";
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString("utf8");
    done();
  }
}

/** Runs one `swisper-memory` command line in-process with `env`. */
export async function cli(
  env: Environment,
  ...argv: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await main(argv, { env, stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

export interface ProgressOptions {
  /** Where progress goes (stderr, so that stdout stays the command's output). */
  stream: NodeJS.WritableStream & { isTTY?: boolean };
  /** What is being done, e.g. "bench: writing". */
  label: string;
  /** Units of work in all. */
  total: number;
  /** Least time between two updates, in ms (default 200 on a terminal, 2000 otherwise). */
  intervalMs?: number;
  /** With a unit name (e.g. "sessions"), each line also shows the rate per second and the ETA. */
  rateUnit?: string;
}

/**
 * Shows how far a long command is: one line redrawn in place on a terminal, a line every few
 * seconds in a log (CI, a pipe), and a final line when done.
 */
export class Progress {
  readonly #stream: ProgressOptions["stream"];
  readonly #label: string;
  readonly #total: number;
  readonly #intervalMs: number;
  readonly #tty: boolean;
  readonly #rateUnit: string | undefined;
  readonly #started = performance.now();
  #done = 0;
  #lastDrawn = 0;

  constructor(options: ProgressOptions) {
    this.#stream = options.stream;
    this.#label = options.label;
    this.#total = Math.max(1, options.total);
    this.#tty = options.stream.isTTY === true;
    this.#intervalMs = options.intervalMs ?? (this.#tty ? 200 : 2000);
    this.#rateUnit = options.rateUnit;
  }

  tick(units = 1): void {
    this.#done = Math.min(this.#total, this.#done + units);
    const now = performance.now();
    if (now - this.#lastDrawn >= this.#intervalMs) {
      this.#lastDrawn = now;
      this.#draw(false);
    }
  }

  finish(): void {
    this.#done = this.#total;
    this.#draw(true);
  }

  /** " 120 sessions/s ETA 35s", or nothing without a unit or before the first unit is done. */
  #rate(elapsed: number): string {
    if (this.#rateUnit === undefined || this.#done === 0 || elapsed <= 0) return "";
    const rate = this.#done / elapsed;
    const eta = Math.ceil((this.#total - this.#done) / rate);
    return ` ${rate.toFixed(rate < 10 ? 1 : 0)} ${this.#rateUnit}/s ETA ${eta}s`;
  }

  #draw(final: boolean): void {
    const ratio = this.#done / this.#total;
    const elapsed = (performance.now() - this.#started) / 1000;
    const seconds = elapsed.toFixed(1);
    const width = 24;
    const filled = Math.round(ratio * width);
    const bar = `[${"#".repeat(filled)}${" ".repeat(width - filled)}]`;
    const text = `${this.#label} ${bar} ${Math.floor(ratio * 100)}% ${this.#done}/${this.#total} ${seconds}s${this.#rate(elapsed)}`;
    if (this.#tty) this.#stream.write(`\r${text}${final ? "\n" : ""}`);
    else this.#stream.write(`${text}\n`);
  }
}

import { type Logger, stderrLogger } from "../logger.js";

/** Removes the listener it was returned for. Calling it twice is harmless. */
export type Unsubscribe = () => void;

/**
 * A tiny typed event hub. We do not extend node:events because that would make `emit` public
 * (anyone could fake a transition) and because a throwing listener would propagate into
 * `execute()` and turn a successful Redis call into a failed one. Here a listener's error is
 * logged and the other listeners still run.
 */
export class Listeners<Events> {
  private readonly byEvent = new Map<keyof Events, Set<(payload: never) => void>>();

  constructor(
    private readonly source: string,
    private readonly logger: Logger = stderrLogger,
  ) {}

  on<K extends keyof Events>(event: K, listener: (payload: Events[K]) => void): Unsubscribe {
    let set = this.byEvent.get(event);
    if (!set) {
      set = new Set();
      this.byEvent.set(event, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const set = this.byEvent.get(event);
    if (!set || set.size === 0) return;
    // Copy first: a listener may unsubscribe (itself or another) while we iterate.
    for (const listener of [...set] as Array<(payload: Events[K]) => void>) {
      try {
        listener(payload);
      } catch (error) {
        this.logger.error(
          { source: this.source, event: String(event), error: errorMessage(error) },
          "resilience event listener threw; ignored",
        );
      }
    }
  }
}

/** The message of an Error, or the value as text: what snapshots and health reports show. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  if (typeof error === "string") return error;
  try {
    return JSON.stringify(error) ?? String(error);
  } catch {
    return String(error);
  }
}

/**
 * CPU time of processes from /proc (Linux), for the benchmarks that charge the stores' CPU
 * (PostgreSQL's backends, redis-server) to the work they measure. Synchronous, so that a
 * reading is taken at the very moment a phase ends.
 */
import { readdirSync, readFileSync } from "node:fs";

const CLOCK_TICKS = 100; // USER_HZ: /proc counts CPU time in 1/100 s on Linux

/**
 * CPU seconds (user + system) the process has used so far, from /proc (Linux); with
 * `withReaped`, also that of its children that ended and were waited for (cutime, cstime).
 */
export function cpuSeconds(pid: number, withReaped = false): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces): utime, stime, cutime and cstime are
  // the 12th to the 15th.
  const fields = stat
    .slice(stat.lastIndexOf(")") + 2)
    .split(" ")
    .map(Number);
  const own = (fields[11] ?? 0) + (fields[12] ?? 0);
  return (withReaped ? own + (fields[13] ?? 0) + (fields[14] ?? 0) : own) / CLOCK_TICKS;
}

/**
 * CPU seconds every process named `name` has used so far (PostgreSQL's backends, redis-server):
 * what the stores charge for the requests. A backend that ends (a pool closing an idle
 * connection) is counted through its parent, the postmaster, which waits for it (cutime);
 * other users of the same servers are counted too (measure on an otherwise idle machine).
 */
export function cpuSecondsOf(name: string): number {
  let total = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() === name)
        total += cpuSeconds(Number(entry), true);
    } catch {
      // The process ended meanwhile.
    }
  }
  return total;
}

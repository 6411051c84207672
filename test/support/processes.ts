import { type ChildProcess, execFile, spawn } from "node:child_process";
import { chmod, chown, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * A free TCP port on 127.0.0.1, released before the caller binds it. Picked below Linux's
 * ephemeral range (32768-60999 by default): a port the OS picks there can be taken, before the
 * server binds it, as the local port of any outgoing connection, and a test's PostgreSQL once
 * failed to start so ("could not bind ... Address already in use").
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canListen(port)) return port;
  }
  throw new Error("no free port on 127.0.0.1 between 20000 and 31999 after 100 tries");
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: "127.0.0.1", port });
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

/**
 * A redis-server of the test's own (free port, temporary folder, no persistence unless asked), so
 * that tests can kill, pause and restart it without touching the shared server.
 */
export class RedisServerProcess {
  readonly port: number;
  readonly dir: string;
  #child: ChildProcess | null = null;
  readonly #persist: boolean;
  readonly #args: readonly string[];

  private constructor(port: number, dir: string, persist: boolean, args: readonly string[]) {
    this.port = port;
    this.dir = dir;
    this.#persist = persist;
    this.#args = args;
  }

  /**
   * Starts one; with `persist`, an append-only file survives restarts. `args` are added to the
   * command line last, so they override the defaults (e.g. `["--maxmemory", "2mb",
   * "--maxmemory-policy", "allkeys-lru"]`, or `["--save", "3600 1"]` for RDB snapshots).
   */
  static async start(
    options: { persist?: boolean; args?: readonly string[] } = {},
  ): Promise<RedisServerProcess> {
    const server = new RedisServerProcess(
      await freePort(),
      await mkdtemp(join(tmpdir(), "swm-redis-")),
      options.persist ?? false,
      options.args ?? [],
    );
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server again after `kill()` (empty unless started with `persist`). */
  async restart(): Promise<void> {
    const args = ["--port", String(this.port), "--bind", "127.0.0.1", "--dir", this.dir, "--save", ""];
    // With persistence, every write is on disk before it is answered, so a SIGKILL loses nothing
    // and the restarted server really has its old data.
    args.push("--appendonly", this.#persist ? "yes" : "no", "--appendfsync", "always", ...this.#args);
    this.#child = spawn("redis-server", args, { stdio: "ignore" });
    await waitForPort(this.port, 10_000);
  }

  /** SIGKILL: the server vanishes mid-traffic, as in a crash. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    this.#child = null;
  }

  /** SIGSTOP: the server stops answering but keeps its connections open. */
  pause(): void {
    this.#child?.kill("SIGSTOP");
  }

  resume(): void {
    this.#child?.kill("SIGCONT");
  }

  async stop(): Promise<void> {
    this.resume();
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * A redis-server in sentinel mode of the caller's own, monitoring the primary on `primaryPort` under
 * `name` with quorum 1 (down after 1 s, failover timeout 5 s).
 */
export class SentinelProcess {
  readonly port: number;
  readonly dir: string;
  #child: ChildProcess | null = null;

  private constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
  }

  static async start(primaryPort: number, name: string): Promise<SentinelProcess> {
    const sentinel = new SentinelProcess(await freePort(), await mkdtemp(join(tmpdir(), "swm-sentinel-")));
    const config = join(sentinel.dir, "sentinel.conf");
    await writeFile(
      config,
      [
        `port ${sentinel.port}`,
        "bind 127.0.0.1",
        `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 1`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 5000`,
        `sentinel parallel-syncs ${name} 1`,
        "",
      ].join("\n"),
    );
    sentinel.#child = spawn("redis-server", [config, "--sentinel"], { stdio: "ignore" });
    await waitForPort(sentinel.port, 10_000);
    return sentinel;
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * A Redis Cluster of the test's own: three primaries on free ports, slots spread over them by
 * `redis-cli --cluster create`.
 */
export class RedisClusterProcesses {
  readonly nodes: { port: number; dir: string; child: ChildProcess }[];

  private constructor(nodes: { port: number; dir: string; child: ChildProcess }[]) {
    this.nodes = nodes;
  }

  static async start(size = 3): Promise<RedisClusterProcesses> {
    const nodes: { port: number; dir: string; child: ChildProcess }[] = [];
    for (let i = 0; i < size; i++) {
      const port = await freePort();
      const dir = await mkdtemp(join(tmpdir(), "swm-cluster-"));
      const child = spawn(
        "redis-server",
        [
          "--port",
          String(port),
          "--bind",
          "127.0.0.1",
          "--dir",
          dir,
          "--save",
          "",
          "--appendonly",
          "no",
        ].concat(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]),
        { stdio: "ignore" },
      );
      nodes.push({ port, dir, child });
      await waitForPort(port, 10_000);
    }
    const cluster = new RedisClusterProcesses(nodes);
    await run("redis-cli", [
      "--cluster",
      "create",
      ...nodes.map((node) => `127.0.0.1:${node.port}`),
      "--cluster-replicas",
      "0",
      "--cluster-yes",
    ]);
    const deadline = Date.now() + 15_000;
    for (;;) {
      const states = await Promise.all(
        nodes.map(
          async (node) => (await run("redis-cli", ["-p", String(node.port), "cluster", "info"])).stdout,
        ),
      );
      if (states.every((info) => info.includes("cluster_state:ok"))) break;
      if (Date.now() > deadline) throw new Error("the Redis Cluster did not reach cluster_state:ok");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return cluster;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.nodes[0]!.port}`;
  }

  async stop(): Promise<void> {
    for (const node of this.nodes) {
      if (node.child.exitCode === null) {
        const exited = new Promise((resolve) => node.child.once("exit", resolve));
        node.child.kill("SIGKILL");
        await exited;
      }
      await rm(node.dir, { recursive: true, force: true });
    }
  }
}

async function postgresBin(name: string): Promise<string> {
  const versions = (await readdir("/usr/lib/postgresql")).sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) throw new Error("no PostgreSQL binaries under /usr/lib/postgresql");
  return join("/usr/lib/postgresql", versions[0]!, "bin", name);
}

/**
 * A PostgreSQL cluster of the test's own (initdb + pg_ctl from the installed binaries, a free port,
 * a temporary folder, trust auth). As root, the server runs as the `postgres` user, since
 * PostgreSQL refuses to run as root.
 */
export class PostgresClusterProcess {
  readonly port: number;
  readonly dir: string;
  readonly #settings: Readonly<Record<string, string>>;

  private constructor(port: number, dir: string, settings: Readonly<Record<string, string>>) {
    this.port = port;
    this.dir = dir;
    this.#settings = settings;
  }

  /**
   * Starts one. `settings` are server settings given on the command line (`-c name=value`), e.g.
   * `{ shared_preload_libraries: "pg_stat_statements" }`.
   */
  static async start(
    options: { settings?: Readonly<Record<string, string>> } = {},
  ): Promise<PostgresClusterProcess> {
    const dir = await mkdtemp(join(tmpdir(), "swm-pg-"));
    const cluster = new PostgresClusterProcess(await freePort(), dir, options.settings ?? {});
    await cluster.#prepareOwnership();
    await cluster.#asPostgres(await postgresBin("initdb"), [
      "-D",
      cluster.dataDir,
      "-A",
      "trust",
      "-U",
      "postgres",
      "--no-sync",
    ]);
    await cluster.restart();
    return cluster;
  }

  get dataDir(): string {
    return join(this.dir, "data");
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  async restart(): Promise<void> {
    await this.#asPostgres(await postgresBin("pg_ctl"), [
      "-D",
      this.dataDir,
      "-l",
      join(this.dir, "server.log"),
      "-o",
      [
        `-p ${this.port} -c listen_addresses=127.0.0.1 -k ${this.dir} -c fsync=off`,
        ...Object.entries(this.#settings).map(([name, value]) => `-c ${name}=${value}`),
      ].join(" "),
      "-w",
      "start",
    ]);
  }

  /** Immediate shutdown: connections drop, like a crash, but the data stays. */
  async stopServer(): Promise<void> {
    await this.#asPostgres(await postgresBin("pg_ctl"), [
      "-D",
      this.dataDir,
      "-m",
      "immediate",
      "-w",
      "stop",
    ]).catch(() => {});
  }

  /**
   * SIGSTOP this cluster's postmaster and its backends (only this cluster's: the postmaster's pid
   * comes from its pid file): the server stops answering but keeps its connections open.
   */
  async pause(signal: "SIGSTOP" | "SIGCONT" = "SIGSTOP"): Promise<void> {
    const pidFile = await readFile(join(this.dataDir, "postmaster.pid"), "utf8").catch(() => "");
    const postmaster = Number(pidFile.split("\n")[0]);
    if (!Number.isInteger(postmaster) || postmaster <= 0) return;
    const { stdout } = await run("pgrep", ["-P", String(postmaster)]).catch(() => ({ stdout: "" }));
    const pids = [postmaster, ...stdout.split("\n").filter(Boolean).map(Number)];
    for (const pid of pids) {
      try {
        process.kill(pid, signal);
      } catch {
        // The process ended between listing and signalling.
      }
    }
  }

  async stop(): Promise<void> {
    await this.pause("SIGCONT");
    await this.stopServer();
    await rm(this.dir, { recursive: true, force: true });
  }

  async #prepareOwnership(): Promise<void> {
    await chmod(this.dir, 0o700);
    if (process.getuid?.() === 0) {
      const { stdout } = await run("id", ["-u", "postgres"]);
      const { stdout: gid } = await run("id", ["-g", "postgres"]);
      await chown(this.dir, Number(stdout.trim()), Number(gid.trim()));
    }
  }

  async #asPostgres(binary: string, args: string[]): Promise<void> {
    if (process.getuid?.() === 0) await run("runuser", ["-u", "postgres", "--", binary, ...args]);
    else await run(binary, args);
  }
}

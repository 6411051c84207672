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

/**
 * The process id of the Redis server that answers on `port`, or null when none answers. A server
 * that answers is not always the one just spawned: another test's can hold the port, and the
 * spawned one then exits.
 */
function redisPidOn(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    let reply = "";
    const done = (pid: number | null): void => {
      socket.destroy();
      resolve(pid);
    };
    socket.setTimeout(1_000, () => done(null));
    socket.once("connect", () => socket.write("INFO server\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk.toString();
      const pid = /process_id:(\d+)\r\n/.exec(reply);
      if (pid) done(Number(pid[1]));
    });
    socket.once("error", () => done(null));
    socket.once("close", () => done(null));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A server exited before it listened; the message carries its last output, which says why. */
class ServerExitedError extends Error {
  readonly portTaken: boolean;

  constructor(command: string, port: number, output: string) {
    super(`${command} for 127.0.0.1:${port} exited before it listened; its last output:\n${output}`);
    this.name = "ServerExitedError";
    this.portTaken = output.includes("Address already in use");
  }
}

/**
 * Spawns a redis-server and waits until it answers on `port` as itself. If it exits first, this
 * fails at once with its last output rather than after the whole wait.
 */
async function spawnRedis(args: readonly string[], port: number): Promise<ChildProcess> {
  const command = "redis-server";
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  // Read the pipes for the server's whole life, so that its logging never blocks on a full pipe.
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-4_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const closed = new Promise((resolve) => child.once("close", resolve));
  const deadline = Date.now() + 10_000;
  while (child.exitCode === null && child.signalCode === null) {
    if ((await redisPidOn(port)) === child.pid) return child;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`nothing listens on 127.0.0.1:${port} after 10000 ms; ${command}'s output:\n${output}`);
    }
    await sleep(50);
  }
  await closed;
  throw new ServerExitedError(command, port, output);
}

/**
 * Starts a server on `count` free ports, on new ones when one was taken between `freePort()`
 * finding it and the server binding it (by another test's server, or as the local port of an
 * outgoing connection).
 */
async function onFreePorts<T>(count: number, start: (ports: number[]) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const ports: number[] = [];
    while (ports.length < count) {
      const port = await freePort();
      if (!ports.includes(port)) ports.push(port);
    }
    try {
      return await start(ports);
    } catch (error) {
      if (!(error instanceof ServerExitedError && error.portTaken) || attempt === 3) throw error;
    }
  }
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
    const dir = await mkdtemp(join(tmpdir(), "swm-redis-"));
    return onFreePorts(1, async ([port]) => {
      const server = new RedisServerProcess(port!, dir, options.persist ?? false, options.args ?? []);
      await server.restart();
      return server;
    });
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
    this.#child = await spawnRedis(args, this.port);
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

async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

/**
 * A redis-server in sentinel mode of the caller's own, monitoring the primary on `primaryPort` under
 * `name` with quorum 1 (down after 1 s, failover timeout 5 s).
 */
export class SentinelProcess {
  readonly port: number;
  readonly dir: string;
  readonly #child: ChildProcess;

  private constructor(port: number, dir: string, child: ChildProcess) {
    this.port = port;
    this.dir = dir;
    this.#child = child;
  }

  static async start(primaryPort: number, name: string): Promise<SentinelProcess> {
    const dir = await mkdtemp(join(tmpdir(), "swm-sentinel-"));
    const config = join(dir, "sentinel.conf");
    return onFreePorts(1, async ([port]) => {
      await writeFile(
        config,
        [
          `port ${port}`,
          "bind 127.0.0.1",
          `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 1`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 5000`,
          `sentinel parallel-syncs ${name} 1`,
          "",
        ].join("\n"),
      );
      const child = await spawnRedis([config, "--sentinel"], port!);
      return new SentinelProcess(port!, dir, child);
    });
  }

  async stop(): Promise<void> {
    await killAndWait(this.#child);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * A Redis Cluster of the test's own: three primaries on free ports, slots spread over them by
 * `redis-cli --cluster create`. Each node's cluster bus gets a free port of its own: by default
 * it is the node's port + 10000, which lands in Linux's ephemeral range, where an outgoing
 * connection of any test can hold it, and the node then exits ("Failed listening on port ...
 * (cluster)").
 */
export class RedisClusterProcesses {
  readonly nodes: { port: number; dir: string; child: ChildProcess }[];

  private constructor(nodes: { port: number; dir: string; child: ChildProcess }[]) {
    this.nodes = nodes;
  }

  static async start(size = 3): Promise<RedisClusterProcesses> {
    const nodes: { port: number; dir: string; child: ChildProcess }[] = [];
    const cluster = new RedisClusterProcesses(nodes);
    try {
      for (let i = 0; i < size; i++) nodes.push(await RedisClusterProcesses.#startNode());
      await cluster.#create();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  static async #startNode(): Promise<{ port: number; dir: string; child: ChildProcess }> {
    const dir = await mkdtemp(join(tmpdir(), "swm-cluster-"));
    return onFreePorts(2, async ([port, busPort]) => {
      const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", ""];
      args.push("--appendonly", "no", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf");
      args.push("--cluster-port", String(busPort));
      return { port: port!, dir, child: await spawnRedis(args, port!) };
    });
  }

  async #create(): Promise<void> {
    await run("redis-cli", [
      "--cluster",
      "create",
      ...this.nodes.map((node) => `127.0.0.1:${node.port}`),
      "--cluster-replicas",
      "0",
      "--cluster-yes",
    ]);
    const deadline = Date.now() + 15_000;
    for (;;) {
      const states = await Promise.all(
        this.nodes.map(
          async (node) => (await run("redis-cli", ["-p", String(node.port), "cluster", "info"])).stdout,
        ),
      );
      if (states.every((info) => info.includes("cluster_state:ok"))) return;
      if (Date.now() > deadline) throw new Error("the Redis Cluster did not reach cluster_state:ok");
      await sleep(100);
    }
  }

  get url(): string {
    return `redis://127.0.0.1:${this.nodes[0]!.port}`;
  }

  async stop(): Promise<void> {
    for (const node of this.nodes) {
      await killAndWait(node.child);
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

  /** The same server through its Unix socket (in `dir`), in libpq's form. */
  get socketUrl(): string {
    return `postgres:///postgres?host=${this.dir}&port=${this.port}&user=postgres`;
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

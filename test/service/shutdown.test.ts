import { once } from "node:events";
import net from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startMemoryService } from "../../src/service/index.js";
import { Capture, type CliStorage, cliStorage } from "../cli/run-cli.js";

// A request that never ends (its client stopped sending the body it announced) must not hold the
// shutdown: once MEMORY_SHUTDOWN_TIMEOUT_MS is up, the service closes that connection and stops
// (before, it waited until its deadline and then exited the process with status 1).
let storage: CliStorage;

beforeAll(async () => {
  storage = await cliStorage("swm-shutdown-");
});
afterAll(async () => {
  await storage?.close();
});

it("stops, closing a connection whose request never ends, once the drain time is up", async () => {
  const service = await startMemoryService({
    env: {
      ...storage.env,
      PORT: "0",
      HOST: "127.0.0.1",
      MEMORY_SHUTDOWN_TIMEOUT_MS: "300",
      LOG_LEVEL: "silent",
    },
    logDestination: new Capture(),
    handleSignals: false,
  });
  const { port } = new URL(service.url);
  const socket = net.connect(Number(port), "127.0.0.1");
  await once(socket, "connect");
  // Announces 1000 bytes of body, sends 8, and then nothing.
  socket.write(
    "POST /v1/imports HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-ndjson\r\n" +
      'Content-Length: 1000\r\n\r\n{"type":',
  );
  const closed = once(socket, "close");
  // The request has reached the route (it reads the body) before the service is told to stop.
  await new Promise((resolve) => setTimeout(resolve, 200));
  await service.stop();
  await closed;
  expect(socket.destroyed).toBe(true);
});

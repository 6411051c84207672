import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/errors.js";
import {
  DEFAULT_BODY_LIMIT_BYTES,
  DEFAULT_RATE_LIMIT_PER_MINUTE,
  isLoopback,
  serviceConfigFromEnv,
} from "../../src/service/index.js";

const KEYS = "acme:config-test-key-0123456789";

describe("serviceConfigFromEnv", () => {
  it("defaults to 127.0.0.1:8080 with auth off", () => {
    const config = serviceConfigFromEnv({});
    expect(config).toMatchObject({
      port: 8080,
      host: "127.0.0.1",
      bodyLimitBytes: DEFAULT_BODY_LIMIT_BYTES,
      rateLimitPerMinute: DEFAULT_RATE_LIMIT_PER_MINUTE,
      shutdownTimeoutMs: 10_000,
      logLevel: "info",
    });
    expect(config.apiKeys.enabled).toBe(false);
  });

  it("listens on every interface by default once API keys are configured", () => {
    const config = serviceConfigFromEnv({ MEMORY_API_KEYS: KEYS });
    expect(config.host).toBe("0.0.0.0");
    expect(config.apiKeys.tenants).toEqual(["acme"]);
  });

  it("refuses a non-loopback HOST without API keys", () => {
    expect(() => serviceConfigFromEnv({ HOST: "0.0.0.0" })).toThrow(/binds to 127.0.0.1 only/);
    expect(serviceConfigFromEnv({ HOST: "localhost" }).host).toBe("localhost");
    expect(serviceConfigFromEnv({ HOST: "::1" }).host).toBe("::1");
    expect(serviceConfigFromEnv({ HOST: "0.0.0.0", MEMORY_API_KEYS: KEYS }).host).toBe("0.0.0.0");
  });

  it("reads the limits and rejects bad values naming the variable", () => {
    const config = serviceConfigFromEnv({
      PORT: "9000",
      MEMORY_BODY_LIMIT_BYTES: "4096",
      MEMORY_RATE_LIMIT_PER_MINUTE: "0",
      LOG_LEVEL: "warn",
    });
    expect(config).toMatchObject({
      port: 9000,
      bodyLimitBytes: 4096,
      rateLimitPerMinute: 0,
      logLevel: "warn",
    });
    for (const [name, value] of [
      ["PORT", "80a"],
      ["PORT", "70000"],
      ["MEMORY_BODY_LIMIT_BYTES", "12"],
      ["MEMORY_RATE_LIMIT_PER_MINUTE", "-1"],
      ["LOG_LEVEL", "loud"],
    ] as const) {
      let caught: unknown;
      try {
        serviceConfigFromEnv({ [name]: value });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ValidationError);
      expect((caught as ValidationError).field).toBe(name);
    }
  });

  it("knows loopback addresses", () => {
    expect(["127.0.0.1", "127.1.2.3", "::1", "localhost"].every(isLoopback)).toBe(true);
    expect(["0.0.0.0", "10.0.0.1", "::", "example.com"].some(isLoopback)).toBe(false);
  });
});

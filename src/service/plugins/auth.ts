import type { FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import type { MemoryManager } from "../../manager/memory-manager.js";
import { type ApiKeyring, type Principal, presentedKey } from "../auth.js";
import { HttpError } from "../http-errors.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Whose key the request presented; null without API keys (every request is tenant "default"). */
    principal: Principal | null;
  }
}

export interface AuthOptions {
  /** The keys and their tenants; an empty keyring turns authentication off. */
  apiKeys: ApiKeyring;
}

/**
 * With API keys, a request without a valid one (`Authorization: Bearer <key>` or `X-API-Key`)
 * answers 401 `unauthorized` before anything else of its scope runs; a valid one sets
 * `request.principal`. Register it before the rate limit, which counts per key.
 */
export const authentication = fp<AuthOptions>(
  async (app, { apiKeys }) => {
    app.decorateRequest("principal", null);
    if (!apiKeys.enabled) return;
    app.addHook("onRequest", async (request, reply) => {
      const key = presentedKey(request.headers);
      const principal = key === null ? null : apiKeys.authenticate(key);
      if (!principal) {
        reply.header("www-authenticate", 'Bearer realm="swisper-memory"');
        throw new HttpError(
          401,
          "unauthorized",
          key === null
            ? "an API key is required: Authorization: Bearer <key> or X-API-Key: <key>"
            : "the API key is not valid",
        );
      }
      request.principal = principal;
    });
  },
  { name: "auth" },
);

/** The memory of a request's tenant (its key's, else "default"), one manager view per tenant. */
export function tenantMemory(memory: MemoryManager): (request: FastifyRequest) => MemoryManager {
  const tenants = new Map<string, MemoryManager>();
  return (request) => {
    const tenant = request.principal?.tenant ?? "default";
    let tenantView = tenants.get(tenant);
    if (!tenantView) {
      tenantView = memory.forTenant(tenant);
      tenants.set(tenant, tenantView);
    }
    return tenantView;
  };
}

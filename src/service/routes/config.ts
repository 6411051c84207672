import type { SessionConfig } from "../../manager/session-config.js";
import { bodyExamples, json } from "../answers.js";
import { SessionConfigPatchSchema, SessionConfigSchema, SessionParamsSchema } from "../schemas.js";
import { bodyFieldNames } from "../validation.js";
import type { SessionScope } from "./session-scope.js";

bodyFieldNames.set(SessionConfigPatchSchema, "config");

/** `GET` and `PUT /v1/sessions/{session_id}/config`. */
export function configRoutes(scope: SessionScope): void {
  getConfigRoute(scope);
  setConfigRoute(scope);
}

function getConfigRoute(scope: SessionScope): void {
  const { routes, memoryFor, metrics, tag, security, errors } = scope;
  routes.get(
    "/sessions/:session_id/config",
    {
      schema: {
        operationId: "getSessionConfig",
        tags: [tag],
        summary: "Get the session's config",
        description: "Every key: the session's overrides over the defaults.",
        security,
        params: SessionParamsSchema,
        response: { 200: json("The session's whole config", SessionConfigSchema), ...errors([400, 404]) },
      },
    },
    async (request) => {
      const { session_id: sessionId } = request.params;
      const memory = memoryFor(request);
      const config = await metrics.timeRead("config", () => memory.getSessionConfig(sessionId));
      if (await scope.isDefaultConfig(memory, config)) await scope.requireSession(memory, sessionId);
      return config;
    },
  );
}

function setConfigRoute({ routes, memoryFor, metrics, tag, security, errors }: SessionScope): void {
  routes.put(
    "/sessions/:session_id/config",
    {
      schema: {
        operationId: "setSessionConfig",
        tags: [tag],
        summary: "Set some of the session's config",
        description:
          "Keys left out keep their values; defaults of keys never set follow the keys that are set. " +
          "`summary_trigger_tokens` must stay below `max_buffer_tokens`.",
        security,
        params: SessionParamsSchema,
        body: SessionConfigPatchSchema,
        bodyExamples: bodyExamples(SessionConfigPatchSchema, {
          budget: {
            summary: "Summarize later, keep more",
            value: { summary_trigger_tokens: 2500, max_buffer_tokens: 3500 },
          },
        }),
        response: {
          200: json("The session's whole config after the change", SessionConfigSchema),
          ...errors([400, 413, 415]),
        },
      },
    },
    async (request) => {
      const { session_id: sessionId } = request.params;
      const memory = memoryFor(request);
      const patch: Partial<SessionConfig> = request.body;
      return metrics.timeWrite("set_config", () => memory.setSessionConfig(sessionId, patch));
    },
  );
}

import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import fp from "fastify-plugin";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { type DocumentOptions, swaggerOptions, swaggerUiOptions } from "../openapi.js";

/**
 * `/openapi.json` and `/docs`, generated from the routes registered after it (so register it
 * before them): their zod schemas and declared answers, see openapi.ts.
 */
export const apiDocs = fp<DocumentOptions>(
  async (app, options) => {
    await app.register(swagger, swaggerOptions(options));
    await app.register(swaggerUi, swaggerUiOptions());
    app
      .withTypeProvider<ZodTypeProvider>()
      .get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  },
  { name: "api-docs" },
);

import fp from "fastify-plugin";

/**
 * Bodies are JSON: a text/plain body is a client mistake (415), not a string message. A GET or
 * DELETE that says `Content-Type: application/json` without a body (many HTTP clients send it on
 * every request) has no body, not an empty JSON document.
 */
export const jsonOnly = fp(
  async (app) => {
    app.removeContentTypeParser("text/plain");
    app.addHook("onRequest", async (request) => {
      if ((request.method === "GET" || request.method === "DELETE") && !hasBody(request.headers)) {
        delete request.headers["content-type"];
      }
    });
  },
  { name: "json-only" },
);

function hasBody(headers: Record<string, string | string[] | undefined>): boolean {
  const length = headers["content-length"];
  return headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}

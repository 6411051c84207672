import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** One request the fake server received, for assertions on prompt, model, headers and limits. */
export interface RecordedRequest {
  method: string;
  /** Path and query, e.g. `/v1/chat/completions?api-version=2024-06-01`. */
  url: string;
  /** Lower-case header names, as node:http gives them. */
  headers: IncomingHttpHeaders;
  /** The raw request body. */
  rawBody: string;
  /** The parsed JSON body, or undefined when it was not JSON. */
  body: ChatCompletionRequestBody | undefined;
}

export interface ChatCompletionRequestBody {
  model?: string;
  messages?: { role: string; content: string }[];
  temperature?: number;
  max_tokens?: number;
  [field: string]: unknown;
}

/**
 * How the server answers the next requests. Each request consumes the first behaviour of the queue
 * set by `setBehaviour`; the last one then repeats.
 */
export type FakeBehaviour =
  /** A normal completion. `content` may be a function of the request (e.g. echo the prompt). */
  | {
      kind: "answer";
      content: string | ((request: RecordedRequest) => string);
      /** Reported as `usage.prompt_tokens`; omit to leave `usage` out of the answer. */
      promptTokens?: number;
      /** Default "stop". */
      finishReason?: string;
      /** Default "fake-model-1". */
      model?: string;
      /** Wait before answering, in milliseconds. Default 0. */
      delayMs?: number;
    }
  /** A non-2xx status with a body (default a JSON error object). */
  | { kind: "status"; status: number; body?: string; headers?: Record<string, string> }
  /** 200 with a body that is not JSON. */
  | { kind: "malformed-json" }
  /** 200 with a JSON body that has no choices. */
  | { kind: "no-choices" }
  /** 200 with a choice whose content is empty (or the given whitespace). */
  | { kind: "empty-content"; content?: string }
  /** Reads the request and never answers. */
  | { kind: "hang" };

export interface FakeOpenAIServer {
  /** Base URL to give the summarizer, e.g. `http://127.0.0.1:43121/v1`. */
  url: string;
  /** Every request received, oldest first. */
  requests: RecordedRequest[];
  /** Replaces the queue of behaviours; the last one repeats. */
  setBehaviour(...behaviours: FakeBehaviour[]): void;
  /** Stops the server, destroying open and hanging connections. */
  close(): Promise<void>;
}

/** Starts a fake OpenAI-compatible server on 127.0.0.1 on a free port. Only POST /v1/chat/completions exists. */
export async function startFakeOpenAIServer(): Promise<FakeOpenAIServer> {
  const requests: RecordedRequest[] = [];
  let queue: FakeBehaviour[] = [{ kind: "answer", content: "Summary." }];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const rawBody = Buffer.concat(chunks).toString("utf8");
      const recorded: RecordedRequest = {
        method: request.method ?? "",
        url: request.url ?? "",
        headers: request.headers,
        rawBody,
        body: parseJson(rawBody),
      };
      requests.push(recorded);
      const path = new URL(recorded.url, "http://localhost").pathname;
      if (recorded.method !== "POST" || path !== "/v1/chat/completions") {
        send(response, 404, JSON.stringify({ error: { message: `no route ${recorded.method} ${path}` } }));
        return;
      }
      const behaviour = queue.length > 1 ? queue.shift()! : queue[0]!;
      respond(behaviour, recorded, response);
    });
  });

  function respond(behaviour: FakeBehaviour, recorded: RecordedRequest, response: ServerResponse): void {
    switch (behaviour.kind) {
      case "answer": {
        const answer = () => {
          const content =
            typeof behaviour.content === "function" ? behaviour.content(recorded) : behaviour.content;
          const body: Record<string, unknown> = {
            id: `chatcmpl-${requests.length}`,
            object: "chat.completion",
            model: behaviour.model ?? "fake-model-1",
            choices: [
              {
                index: 0,
                message: { role: "assistant", content },
                finish_reason: behaviour.finishReason ?? "stop",
              },
            ],
          };
          if (behaviour.promptTokens !== undefined) {
            body.usage = { prompt_tokens: behaviour.promptTokens, completion_tokens: 1, total_tokens: 1 };
          }
          send(response, 200, JSON.stringify(body));
        };
        if (!behaviour.delayMs) {
          answer();
          return;
        }
        const timer = setTimeout(() => {
          timers.delete(timer);
          answer();
        }, behaviour.delayMs);
        timers.add(timer);
        return;
      }
      case "status":
        send(
          response,
          behaviour.status,
          behaviour.body ?? JSON.stringify({ error: { message: `fake error ${behaviour.status}` } }),
          behaviour.headers,
        );
        return;
      case "malformed-json":
        send(response, 200, '{"choices": [ {"message": ');
        return;
      case "no-choices":
        send(response, 200, JSON.stringify({ id: "chatcmpl-x", object: "chat.completion", choices: [] }));
        return;
      case "empty-content":
        send(
          response,
          200,
          JSON.stringify({
            choices: [{ index: 0, message: { role: "assistant", content: behaviour.content ?? "" } }],
          }),
        );
        return;
      case "hang":
        return;
    }
  }

  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    setBehaviour(...behaviours: FakeBehaviour[]) {
      if (behaviours.length === 0) throw new Error("setBehaviour needs at least one behaviour");
      queue = [...behaviours];
    },
    close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      // A hanging request keeps its socket open forever; close() would wait for it without this.
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      );
    },
  };
}

function send(
  response: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  response.writeHead(status, { "content-type": "application/json", ...headers });
  response.end(body);
}

function parseJson(text: string): ChatCompletionRequestBody | undefined {
  try {
    return JSON.parse(text) as ChatCompletionRequestBody;
  } catch {
    return undefined;
  }
}

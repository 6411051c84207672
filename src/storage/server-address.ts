/**
 * host:port of a connection URL (postgres://, redis://, https://), with the scheme's default
 * port; never the user or the password. Null for a URL that does not parse.
 */
export function addressOf(url: string, defaultPort: number): string | null {
  try {
    const parsed = new URL(url);
    // A `host` or `port` in the query is what node-postgres connects to (libpq's form; a folder
    // is a Unix socket's): they win over the URL's own.
    const host = parsed.searchParams.get("host") || parsed.hostname || "localhost";
    return `${host}:${parsed.searchParams.get("port") || parsed.port || defaultPort}`;
  } catch {
    return null;
  }
}

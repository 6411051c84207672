/**
 * host:port of a connection URL (postgres://, redis://, https://), with the scheme's default
 * port; never the user or the password. Null for a URL that does not parse.
 */
export function addressOf(url: string, defaultPort: number): string | null {
  try {
    const parsed = new URL(url);
    const host = parsed.hostname || parsed.searchParams.get("host") || "localhost";
    return `${host}:${parsed.port || defaultPort}`;
  } catch {
    return null;
  }
}

// Which browser pages may use the signalling server: an explicit list of origins (scheme, host and
// port), given by whoever starts the server (its own page origins, plus --allow-origin). Nothing is
// trusted because of what the request itself says: not the Host header (a DNS-rebinding page reaches
// the server under the attacker's host name, so "Origin host equals Host" would let it in), and not
// "any localhost port" (any local program or any page on another local port could then join rooms).
//
// A request without an Origin header comes from a program, not a browser page: such a client could
// send any Origin anyway, so the check cannot stop it and lets it through; every other limit applies.

/** The canonical form of an origin ('https://host:port', default ports dropped); throws if it is not one. */
export function normalizeOrigin(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`not an origin: "${text}" (expected e.g. https://192.168.1.20:5173)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`not an http(s) origin: "${text}"`);
  if (url.pathname !== '/' || url.search || url.hash || url.username || url.password) {
    throw new Error(`an origin has no path, query or user: "${text}" (use ${url.origin})`);
  }
  return url.origin;
}

export class OriginPolicy {
  private readonly origins: ReadonlySet<string>;
  private readonly hostnames: ReadonlySet<string>;

  constructor(allowed: Iterable<string>) {
    const origins = new Set([...allowed].map(normalizeOrigin));
    this.origins = origins;
    this.hostnames = new Set([...origins].map((o) => new URL(o).hostname));
  }

  list(): string[] {
    return [...this.origins];
  }

  /** Whether a request with this Origin header may open a WebSocket (absent: a program, allowed). */
  allowsOrigin(origin: string | undefined): boolean {
    if (origin === undefined) return true;
    return this.origins.has(origin);
  }

  /**
   * Whether an HTTP request for a page-only resource (the ICE credentials) was addressed to one of
   * the allowed origins' host names. This refuses, never admits: a same-origin fetch carries no
   * Origin header, so under DNS rebinding the Host header (the attacker's name) is what gives it away.
   */
  allowsHost(host: string | undefined): boolean {
    if (!host) return false;
    let hostname: string;
    try {
      hostname = new URL(`http://${host}`).hostname;
    } catch {
      return false;
    }
    return this.hostnames.has(hostname);
  }
}

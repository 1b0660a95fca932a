// ICE for the mesh, from the server that relays its signals: the lab's server hands its pages their
// STUN/TURN servers at GET <signal path>/ice (`{ iceServers, ttlSeconds }`, TURN credentials that expire),
// so nothing about NAT traversal is configured in a page or a URL. And which path a link took:
// host (direct on the LAN), srflx/prflx (through a NAT, found by STUN), or relay (through TURN).
import type { Signalling } from './signalling';

export type LinkPath = 'host' | 'srflx' | 'prflx' | 'relay';

/** wss://h/signal -> https://h/signal/ice; null for a signalling URL that is not at a /signal path. */
export function iceEndpointFor(signalUrl: string): string | null {
  let url: URL;
  try {
    url = new URL(signalUrl);
  } catch {
    return null;
  }
  if ((url.protocol !== 'ws:' && url.protocol !== 'wss:') || !/\/signal\/?$/.test(url.pathname)) return null;
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  url.pathname = `${url.pathname.replace(/\/$/, '')}/ice`;
  url.search = '';
  return url.toString();
}

const ICE_URL = /^(stun|stuns|turn|turns):[^\s]+$/;

/** Checks the server's answer field by field; throws naming what is wrong. */
export function parseIceAnswer(raw: unknown): { iceServers: RTCIceServer[]; ttlSeconds: number } {
  if (typeof raw !== 'object' || raw === null) throw new Error('not a JSON object');
  const { iceServers, ttlSeconds } = raw as Record<string, unknown>;
  if (!Array.isArray(iceServers) || iceServers.length > 16) throw new Error('iceServers is not a list of at most 16');
  if (typeof ttlSeconds !== 'number' || !(ttlSeconds > 0)) throw new Error('ttlSeconds is not a positive number');
  const servers = iceServers.map((entry, i): RTCIceServer => {
    if (typeof entry !== 'object' || entry === null) throw new Error(`iceServers[${i}] is not an object`);
    const { urls, username, credential } = entry as Record<string, unknown>;
    const list = typeof urls === 'string' ? [urls] : urls;
    if (!Array.isArray(list) || list.length === 0 || !list.every((u) => typeof u === 'string' && ICE_URL.test(u))) {
      throw new Error(`iceServers[${i}].urls must be stun:/turn: URLs`);
    }
    if ((username !== undefined && typeof username !== 'string') || (credential !== undefined && typeof credential !== 'string')) {
      throw new Error(`iceServers[${i}] has a non-string username or credential`);
    }
    return { urls: list as string[], ...(username !== undefined ? { username } : {}), ...(credential !== undefined ? { credential } : {}) };
  });
  return { iceServers: servers, ttlSeconds };
}

export interface IceServers {
  servers: RTCIceServer[];
  /** performance.now() after which the TURN credentials should be fetched again. */
  refreshAfter: number;
}

/**
 * The ICE servers the signalling server hands out; none (host candidates only: enough on one machine
 * or a LAN) for BroadcastChannel rooms, servers without an ICE endpoint, or a failed fetch, which
 * `warn` reports (the room may still work on a LAN).
 */
export async function iceServersFor(
  signalling: Signalling,
  warn: (message: string) => void,
  fetchImpl: typeof fetch = (input, init) => fetch(input, init),
  timeoutMs = 5000,
): Promise<IceServers> {
  const none = { servers: [], refreshAfter: Infinity };
  const signalUrl = (signalling as Partial<{ url: string }>).url;
  const endpoint = signalling.kind === 'websocket' && typeof signalUrl === 'string' ? iceEndpointFor(signalUrl) : null;
  if (!endpoint) return none;
  try {
    const response = await fetchImpl(endpoint, { cache: 'no-store', signal: AbortSignal.timeout(timeoutMs) });
    if (response.status === 404) return none;
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const { iceServers, ttlSeconds } = parseIceAnswer(await response.json());
    return { servers: iceServers, refreshAfter: performance.now() + (ttlSeconds * 1000) / 2 };
  } catch (error) {
    warn(`no ICE servers from ${endpoint} (${error instanceof Error ? error.message : String(error)}): links use direct paths only, which work on one LAN`);
    return none;
  }
}

/** The candidate types of the link's selected pair: relay if either end relays, else a NAT path, else host. */
export async function selectedPath(pc: Pick<RTCPeerConnection, 'getStats'>): Promise<LinkPath | undefined> {
  const stats = await pc.getStats();
  const byId = new Map<string, Record<string, unknown>>();
  stats.forEach((s: Record<string, unknown>) => byId.set(s.id as string, s));
  let pair: Record<string, unknown> | undefined;
  for (const s of byId.values()) {
    if (s.type === 'transport' && typeof s.selectedCandidatePairId === 'string') pair = byId.get(s.selectedCandidatePairId);
  }
  pair ??= [...byId.values()].find((s) => s.type === 'candidate-pair' && (s.selected === true || (s.nominated === true && s.state === 'succeeded')));
  if (!pair) return undefined;
  const types = [byId.get(pair.localCandidateId as string)?.candidateType, byId.get(pair.remoteCandidateId as string)?.candidateType];
  for (const kind of ['relay', 'srflx', 'prflx', 'host'] as const) if (types.includes(kind)) return kind;
  return undefined;
}

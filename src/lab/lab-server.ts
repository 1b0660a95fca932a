// What the page knows of the server that served it: the lab's own server (Vite with
// scripts/lab-server-plugin.ts) puts a <meta name="lab-server"> in the page saying where its
// signalling is (/signal on the page's own origin), whether pages should use it by themselves
// (`npm start`), and which origin room links should carry (the LAN address the teacher picked). A page
// from any other server (a static build, a CDN) has no such tag: rooms then use BroadcastChannel,
// tabs of one browser, unless `signal=` names a server.
import { configToQuery, type LabConfig } from './config';

export interface LabServerInfo {
  /** Path of the same-origin signalling socket, e.g. "/signal". */
  signalPath: string;
  /** Pages use the same-origin signalling without `signal=`. */
  discover: boolean;
  /** Origin (scheme://host:port) room links carry; null: the page's own. */
  shareOrigin: string | null;
}

export const LAB_SERVER_META = 'lab-server';

/** The tag's content, checked field by field (a malformed tag is treated as absent). */
export function parseLabServerInfo(content: string | null | undefined): LabServerInfo | null {
  if (!content) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(content);
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null) return null;
  const { signalPath, discover, shareOrigin } = raw as Record<string, unknown>;
  if (typeof signalPath !== 'string' || !/^\/[A-Za-z0-9/_-]*$/.test(signalPath) || typeof discover !== 'boolean') return null;
  if (shareOrigin !== null && (typeof shareOrigin !== 'string' || !/^https?:\/\/[^/\s]+$/.test(shareOrigin))) return null;
  return { signalPath, discover, shareOrigin };
}

export function readLabServerInfo(doc: Pick<Document, 'querySelector'> | undefined = globalThis.document): LabServerInfo | null {
  return parseLabServerInfo(doc?.querySelector(`meta[name="${LAB_SERVER_META}"]`)?.getAttribute('content'));
}

type PageLocation = Pick<Location, 'protocol' | 'host' | 'origin' | 'pathname'>;

/** ws(s)://<this page's host>/<path>: wss on an https page, so no mixed content. */
export function sameOriginSignal(location: Pick<Location, 'protocol' | 'host'>, path: string): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
}

/** The config with the signalling the page should use: `signal=` if given, else the server's own when it says so. */
export function withDiscoveredSignal(config: LabConfig, info: LabServerInfo | null, location: Pick<Location, 'protocol' | 'host'>): LabConfig {
  if (config.signal !== '' || !info?.discover) return config;
  return { ...config, signal: sameOriginSignal(location, info.signalPath) };
}

const LOOPBACK_HOST = /^(localhost|127(?:\.\d+){3}|\[::1\])$/;

export interface RoomLinkRequest {
  room: string;
  config: LabConfig;
  info: LabServerInfo | null;
  location: PageLocation;
  /** Tabs opening the link start training at once (autostart=1). */
  startOnOpen: boolean;
}

/**
 * The link a student opens to join: on the origin other machines reach (the server's share origin, else
 * this page's), with the room, the signalling server (this server's own, seen from that origin) and the
 * run settings, so that the joining tab trains the same model. Never the room secret (it is told, not
 * shown on a projector) nor the teacher's own name (each student types theirs).
 */
export function roomLink({ room, config, info, location, startOnOpen }: RoomLinkRequest): string {
  const origin = info?.shareOrigin ?? location.origin;
  let signal = config.signal;
  if (info && signal === sameOriginSignal(location, info.signalPath)) {
    signal = sameOriginSignal(new URL(origin), info.signalPath);
  }
  const query = configToQuery({ ...config, room, signal, secret: '', name: '', autostart: startOnOpen });
  return `${origin}${location.pathname}?${query}`;
}

/** Why a room link would not work on the students' machines; null when it should. */
export function linkReachProblem(link: string): string | null {
  const url = new URL(link);
  if (LOOPBACK_HOST.test(url.hostname)) {
    return 'This link names this machine\'s loopback address: only this machine can open it. Start the lab with `npm start` to serve a class on the network.';
  }
  if (!url.searchParams.get('signal')) {
    return 'No signalling server: only tabs of this browser can join by this link. Start the lab with `npm start` (or add signal=wss://HOST/signal).';
  }
  return null;
}

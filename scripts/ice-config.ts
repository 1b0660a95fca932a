// The ICE servers the lab's server hands its pages (GET /signal/ice): STUN/TURN URLs from flags or the
// environment, and for TURN time-limited credentials in coturn's REST-API form (`use-auth-secret`):
// username = "<expiry unix seconds>:<name>", credential = base64(HMAC-SHA1(secret, username)). The
// shared secret stays on the server; a page only ever sees credentials that expire.
import { createHmac } from 'node:crypto';

export interface IceConfig {
  /** stun:host:port URLs. */
  stun: string[];
  /** turn:host:port?transport=udp|tcp / turns: URLs. */
  turn: string[];
  /** coturn's static-auth-secret; needed when `turn` is not empty. */
  turnSecret?: string;
  /** Lifetime of handed-out TURN credentials. */
  ttlSeconds: number;
}

export interface IceResponse {
  iceServers: { urls: string[]; username?: string; credential?: string }[];
  ttlSeconds: number;
}

export const DEFAULT_ICE_TTL_SECONDS = 12 * 3600;

export function turnCredentials(secret: string, name: string, nowMs: number, ttlSeconds: number): { username: string; credential: string } {
  const username = `${Math.floor(nowMs / 1000) + ttlSeconds}:${name}`;
  return { username, credential: createHmac('sha1', secret).update(username).digest('base64') };
}

export function iceResponse(config: IceConfig, nowMs: number, name = 'lab'): IceResponse {
  const iceServers: IceResponse['iceServers'] = [];
  if (config.stun.length > 0) iceServers.push({ urls: config.stun });
  if (config.turn.length > 0 && config.turnSecret) iceServers.push({ urls: config.turn, ...turnCredentials(config.turnSecret, name, nowMs, config.ttlSeconds) });
  return { iceServers, ttlSeconds: config.ttlSeconds };
}

/** Checks flag values early, with messages naming the flag. */
export function checkIceConfig(config: IceConfig): void {
  for (const url of config.stun) if (!/^stuns?:[^\s]+$/.test(url)) throw new Error(`--stun ${url}: expected stun:HOST:PORT`);
  for (const url of config.turn) if (!/^turns?:[^\s]+$/.test(url)) throw new Error(`--turn ${url}: expected turn:HOST:PORT (or turns:)`);
  if (config.turn.length > 0 && !config.turnSecret) throw new Error('--turn needs the TURN server\'s shared secret: set LAB_TURN_SECRET (coturn: static-auth-secret)');
  if (!Number.isInteger(config.ttlSeconds) || config.ttlSeconds < 60) throw new Error('--turn-ttl must be at least 60 seconds');
}

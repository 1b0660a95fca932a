// ICE servers the signalling server hands to pages: STUN and TURN URLs from flags or environment, and
// time-limited TURN credentials in coturn's REST-API form (`use-auth-secret` / `static-auth-secret`):
//   username   = `${expiryUnixSeconds}:${name}`
//   credential = base64(HMAC-SHA1(sharedSecret, username))
// The TURN server recomputes the credential from the username with the same shared secret and refuses
// it after the expiry, so the secret itself never leaves the two servers: it is in no URL and no page.
import { createHmac } from 'node:crypto';
import type { IceServer } from '../src/peer/signal-protocol';

export interface IceConfig {
  stun: string[];
  turn: string[];
  /** coturn's static-auth-secret; required when turn is not empty. */
  turnSecret?: string;
  /** Lifetime of a TURN credential. */
  ttlSeconds: number;
}

/**
 * Default credential lifetime: a tab receives its credentials once, when it joins, and may need a new
 * relayed link hours later (a class re-forms its ring whenever a laptop sleeps), so a lesson-long
 * lifetime; a leaked credential is usable for at most this long.
 */
export const DEFAULT_TURN_TTL_SECONDS = 8 * 3600;

export const NO_ICE: IceConfig = { stun: [], turn: [], ttlSeconds: DEFAULT_TURN_TTL_SECONDS };

export function turnCredential(secret: string, name: string, expiryUnixSeconds: number): { username: string; credential: string } {
  const username = `${expiryUnixSeconds}:${name}`;
  return { username, credential: createHmac('sha1', secret).update(username).digest('base64') };
}

function checkUrls(urls: string[], schemes: RegExp, what: string): void {
  for (const url of urls) {
    if (!schemes.test(url)) throw new Error(`${what} URL "${url}" must start with ${schemes.source.replace(/[\^()]/g, '').replace(/\|/g, ' or ')}`);
    if (/[?&](secret|password|credential)=/i.test(url)) throw new Error(`${what} URL "${url}" carries a secret: give it with --turn-secret or LAB_TURN_SECRET`);
  }
}

/** Checks a configuration; throws with a clear message on anything unusable. */
export function validateIceConfig(config: IceConfig): IceConfig {
  checkUrls(config.stun, /^(stun|stuns):/, 'STUN');
  checkUrls(config.turn, /^(turn|turns):/, 'TURN');
  if (config.turn.length > 0 && !config.turnSecret) throw new Error('TURN URLs need a shared secret (--turn-secret or LAB_TURN_SECRET), the one coturn has as static-auth-secret');
  if (!Number.isInteger(config.ttlSeconds) || config.ttlSeconds < 60 || config.ttlSeconds > 7 * 86400) {
    throw new Error('the TURN credential lifetime must be 60 s to 7 days');
  }
  return config;
}

/** The ICE servers for one client (`name` goes into the TURN username, e.g. its peer id). */
export function iceServersFor(config: IceConfig, name: string, nowMs: number = Date.now()): IceServer[] {
  const servers: IceServer[] = [];
  if (config.stun.length > 0) servers.push({ urls: config.stun });
  if (config.turn.length > 0 && config.turnSecret) {
    const expiry = Math.floor(nowMs / 1000) + config.ttlSeconds;
    servers.push({ urls: config.turn, ...turnCredential(config.turnSecret, name, expiry) });
  }
  return servers;
}

const splitList = (text: string | undefined) => (text ?? '').split(',').map((s) => s.trim()).filter(Boolean);

/**
 * The configuration from the environment: LAB_STUN_URLS and LAB_TURN_URLS (comma-separated),
 * LAB_TURN_SECRET, LAB_TURN_TTL_SECONDS. Command-line flags (main.ts) add to or override these.
 */
export function iceConfigFromEnv(env: Record<string, string | undefined> = process.env): IceConfig {
  return {
    stun: splitList(env.LAB_STUN_URLS),
    turn: splitList(env.LAB_TURN_URLS),
    turnSecret: env.LAB_TURN_SECRET || undefined,
    ttlSeconds: env.LAB_TURN_TTL_SECONDS ? Number(env.LAB_TURN_TTL_SECONDS) : DEFAULT_TURN_TTL_SECONDS,
  };
}

/**
 * Applies one command-line ICE flag to `config`: `--stun URL[,URL]`, `--turn URL[,URL]`,
 * `--turn-secret S`, `--turn-ttl SECONDS`. Returns false when `flag` is not one of them (for CLIs that
 * share these flags: server/main.ts, scripts/start.ts). Check the result with validateIceConfig.
 */
export const ICE_FLAGS: readonly string[] = ['--stun', '--turn', '--turn-secret', '--turn-ttl'];

export function applyIceFlag(config: IceConfig, flag: string, value: string): boolean {
  if (flag === '--stun') config.stun = splitList(value);
  else if (flag === '--turn') config.turn = splitList(value);
  else if (flag === '--turn-secret') config.turnSecret = value;
  else if (flag === '--turn-ttl') config.ttlSeconds = Number(value);
  else return false;
  return true;
}

export const ICE_FLAGS_USAGE = '[--stun URL[,URL]] [--turn URL[,URL]] [--turn-secret S] [--turn-ttl SECONDS]';

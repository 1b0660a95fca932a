// `npm start`'s flags and environment, parsed and checked before anything starts (a typo is an error
// naming the flag, never a silently different server).
import { DEFAULT_CERT_DIR } from './lab-certificate';
import { DEFAULT_TURN_TTL_SECONDS, iceConfigFromEnv, validateIceConfig, type IceConfig } from '../server/ice';

export interface StartOptions {
  /** Plain-http port on loopback (the teacher's own tabs; WebGPU works there without a certificate). */
  port: number;
  /** HTTPS port of the LAN server; 0 turns the LAN server off. */
  httpsPort: number;
  /** Interface the HTTPS server listens on. */
  host: string;
  /** The address room links carry (default: the first private IPv4 address). */
  lanAddress?: string;
  certFile?: string;
  keyFile?: string;
  certDir: string;
  /**
   * Vite's dependency cache (default: Vite's own, node_modules/.vite). A second lab server on the same
   * checkout (the e2e suite's namespace lab beside its dev server) needs its own: two servers
   * re-optimising dependencies in one cache can leave a page importing a bundle the other just replaced.
   */
  cacheDir?: string;
  /** Extra page origins allowed to open the signalling socket. */
  allowOrigins: string[];
  ice: IceConfig;
}

export const START_USAGE = `usage: npm start -- [options]
  --port N            plain http on 127.0.0.1 for this machine's tabs (default 5173)
  --https-port N      HTTPS for the class on the LAN (default 5443; 0: off)
  --host ADDR         interface of the HTTPS server (default 0.0.0.0: every interface)
  --lan-address A     address (or host name) put in room links and QR codes (default: first private IPv4)
  --cert F --key F    your own certificate and key (PEM), e.g. from mkcert; default: a self-signed one in ${DEFAULT_CERT_DIR}/
  --cert-dir D        where the self-signed certificate is kept (default ${DEFAULT_CERT_DIR})
  --cache-dir D       Vite's dependency cache (default node_modules/.vite; give each server on one checkout its own)
  --allow-origin URL  another page origin allowed to use the signalling (repeatable, comma-separated)
  --stun URL          STUN server handed to pages (repeatable; env LAB_STUN_URLS, comma-separated)
  --turn URL          TURN server handed to pages (repeatable; env LAB_TURN_URLS); needs env LAB_TURN_SECRET
  --turn-ttl S        lifetime of the TURN credentials pages get (default ${DEFAULT_TURN_TTL_SECONDS} s; env LAB_TURN_TTL_SECONDS)`;

const list = (value: string | undefined) => (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);

export function parseStartArgs(argv: readonly string[], env: NodeJS.ProcessEnv = {}): StartOptions | 'help' {
  const out: StartOptions = {
    port: Number(env.LAB_PORT ?? 5173),
    httpsPort: Number(env.LAB_HTTPS_PORT ?? 5443),
    host: env.LAB_HOST ?? '0.0.0.0',
    lanAddress: env.LAB_LAN_ADDRESS || undefined,
    certDir: DEFAULT_CERT_DIR,
    allowOrigins: [],
    // The TURN secret comes from the environment only: a flag would show it to every local user in `ps`.
    ice: iceConfigFromEnv(env),
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value`);
      return v;
    };
    const port = () => {
      const raw = value();
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${flag} must be a port 0-65535, got "${raw}"`);
      return n;
    };
    switch (flag) {
      case '--port': out.port = port(); break;
      case '--https-port': out.httpsPort = port(); break;
      case '--host': out.host = value(); break;
      case '--lan-address': out.lanAddress = value(); break;
      case '--cert': out.certFile = value(); break;
      case '--key': out.keyFile = value(); break;
      case '--cert-dir': out.certDir = value(); break;
      case '--cache-dir': out.cacheDir = value(); break;
      case '--allow-origin': out.allowOrigins.push(...list(value())); break;
      case '--stun': out.ice.stun.push(...list(value())); break;
      case '--turn': out.ice.turn.push(...list(value())); break;
      case '--turn-ttl': out.ice.ttlSeconds = Number(value()); break;
      case '--help': case '-h': return 'help';
      default: throw new Error(`unknown option ${flag} (npm start -- --help lists them)`);
    }
  }
  for (const [name, n] of [['LAB_PORT', out.port], ['LAB_HTTPS_PORT', out.httpsPort]] as const) {
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${name} must be a port 0-65535`);
  }
  if (out.httpsPort !== 0 && out.httpsPort === out.port) throw new Error('--port and --https-port must differ');
  if ((out.certFile === undefined) !== (out.keyFile === undefined)) throw new Error('give both --cert and --key, or neither');
  for (const origin of out.allowOrigins) {
    if (!/^https?:\/\/[^/\s]+$/.test(origin)) throw new Error(`--allow-origin ${origin}: expected scheme://host[:port], no path`);
  }
  validateIceConfig(out.ice);
  return out;
}

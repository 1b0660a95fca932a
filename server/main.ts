// CLI of the standalone signalling server:
//   npx tsx server/main.ts [--port 8787] [--host 0.0.0.0] [--allow-origin URL[,URL]]
//     [--stun URL[,URL]] [--turn URL[,URL]] [--turn-secret S] [--turn-ttl SECONDS]
//     [--max-connections-per-address N] [--max-peers-per-room N]
// ICE settings also come from LAB_STUN_URLS, LAB_TURN_URLS, LAB_TURN_SECRET, LAB_TURN_TTL_SECONDS
// (flags win). Prefer LAB_TURN_SECRET to --turn-secret: a flag is visible to every local user in `ps`.
// Without --allow-origin, the pages allowed are the Vite dev server's (`npm run dev`) on this machine.
import { ICE_FLAGS, ICE_FLAGS_USAGE, applyIceFlag, iceConfigFromEnv, validateIceConfig, type IceConfig } from './ice';
import { DEFAULT_PORT, DEFAULT_SIGNALLING_LIMITS, startSignallingServer } from './server';

export const DEV_ORIGINS = ['http://localhost:5173', 'http://127.0.0.1:5173'];

interface Cli {
  port: number;
  host: string;
  allowOrigins: string[];
  ice: IceConfig;
  maxConnectionsPerAddress: number;
  maxPeersPerRoom: number;
}

const USAGE = `usage: tsx server/main.ts [--port ${DEFAULT_PORT}] [--host 0.0.0.0] [--allow-origin URL[,URL]]
  ${ICE_FLAGS_USAGE}
  [--max-connections-per-address N] [--max-peers-per-room N]`;

function parseArgs(argv: string[]): Cli {
  const cli: Cli = {
    port: DEFAULT_PORT,
    host: '0.0.0.0',
    allowOrigins: [],
    ice: iceConfigFromEnv(),
    maxConnectionsPerAddress: DEFAULT_SIGNALLING_LIMITS.perAddress.maxConnections,
    maxPeersPerRoom: DEFAULT_SIGNALLING_LIMITS.maxPeersPerRoom,
  };
  const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
  const int = (arg: string, v: string, min: number, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${arg} must be an integer ${min}-${max}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--port') cli.port = int(arg, value(), 0, 65535);
    else if (arg === '--host') cli.host = value();
    else if (arg === '--allow-origin') cli.allowOrigins.push(...list(value()));
    else if (ICE_FLAGS.includes(arg)) applyIceFlag(cli.ice, arg, value());
    else if (arg === '--max-connections-per-address') cli.maxConnectionsPerAddress = int(arg, value(), 1, 100_000);
    else if (arg === '--max-peers-per-room') cli.maxPeersPerRoom = int(arg, value(), 2, 1024);
    else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${arg} (try --help)`);
  }
  if (cli.allowOrigins.length === 0) cli.allowOrigins = DEV_ORIGINS;
  validateIceConfig(cli.ice);
  return cli;
}

async function main(): Promise<void> {
  const cli = parseArgs(process.argv.slice(2));
  const server = await startSignallingServer({
    port: cli.port,
    host: cli.host,
    allowOrigins: cli.allowOrigins,
    ice: cli.ice,
    limits: { maxPeersPerRoom: cli.maxPeersPerRoom, perAddress: { maxConnections: cli.maxConnectionsPerAddress } },
    log: (line) => console.log(`[signal] ${line}`),
  });
  console.log(`signalling server on ws://${cli.host}:${server.port} (health: http://127.0.0.1:${server.port}/health)`);
  console.log(`  pages allowed from: ${server.allowedOrigins().join(', ')}`);
  if (cli.ice.turn.length > 0) console.log(`  TURN: ${cli.ice.turn.join(', ')} (credentials valid ${cli.ice.ttlSeconds} s)`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

// CLI of the signalling server: `npx tsx server/main.ts [--port 8787] [--host 0.0.0.0]
// [--allow-origin https://example.org,http://10.0.0.5:5173]`.
import { DEFAULT_PORT, startSignallingServer } from './server';

interface Cli {
  port: number;
  host: string;
  allowOrigins: string[];
}

function parseArgs(argv: string[]): Cli {
  const cli: Cli = { port: DEFAULT_PORT, host: '0.0.0.0', allowOrigins: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--port') {
      cli.port = Number(value());
      if (!Number.isInteger(cli.port) || cli.port < 0 || cli.port > 65535) throw new Error('--port must be 0-65535');
    } else if (arg === '--host') cli.host = value();
    else if (arg === '--allow-origin') cli.allowOrigins.push(...value().split(',').filter(Boolean));
    else if (arg === '--help' || arg === '-h') {
      console.log('usage: tsx server/main.ts [--port 8787] [--host 0.0.0.0] [--allow-origin URL[,URL]]');
      process.exit(0);
    } else throw new Error(`unknown argument ${arg} (try --help)`);
  }
  return cli;
}

async function main(): Promise<void> {
  const cli = parseArgs(process.argv.slice(2));
  const server = await startSignallingServer({ ...cli, log: (line) => console.log(`[signal] ${line}`) });
  console.log(`signalling server on ws://${cli.host}:${server.port} (health: http://127.0.0.1:${server.port}/health)`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

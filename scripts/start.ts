// `npm start`: the lab on its built-in defaults. Serves the app with Vite and runs the signalling server
// beside it, so that tabs of one browser (BroadcastChannel) and tabs on other machines (signal=ws://...)
// can both join rooms.
import { createServer } from 'vite';
import { DEFAULT_PORT, startSignallingServer } from '../server/server';

async function main(): Promise<void> {
  const signalling = await startSignallingServer({
    port: Number(process.env.LAB_SIGNAL_PORT ?? DEFAULT_PORT),
    host: '0.0.0.0',
    allowOrigins: ['http://localhost:5173', 'http://127.0.0.1:5173'],
    log: (line) => console.log(`[signal] ${line}`),
  });
  const vite = await createServer({ configFile: 'vite.config.ts' });
  await vite.listen();
  vite.printUrls();
  console.log(`  signalling server: ws://127.0.0.1:${signalling.port} (for tabs on other machines: signal=ws://THIS-HOST:${signalling.port})`);
  console.log('  open the lab in two or more tabs with the same room to train together; Ctrl-C stops.');
  const stop = async () => {
    await Promise.all([vite.close(), signalling.close()]);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});

// The benchmarks' Vite server: the lab's config on a free port of 127.0.0.1. Like every lab server it
// is cross-origin isolated (COOP/COEP, scripts/lab-server-plugin.ts), so that a benchmark page may use
// SharedArrayBuffer, TensorFlow.js's WASM backend may start its threads, and ours its kernel threads.
import { createServer } from 'vite';
import type { LabServer } from '../scripts/lab-browser';

export async function startIsolatedBenchServer(): Promise<LabServer> {
  const server = await createServer({
    configFile: 'vite.config.ts',
    logLevel: 'error',
    server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false },
  });
  await server.listen();
  const address = server.httpServer?.address();
  if (!address || typeof address === 'string') throw new Error('vite did not report its port');
  return { url: `http://127.0.0.1:${address.port}`, close: () => server.close() };
}

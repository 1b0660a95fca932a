// The benchmarks' Vite server: the lab's config on a free port of 127.0.0.1, every response
// cross-origin isolated (COOP/COEP), so that a benchmark page may use SharedArrayBuffer and
// TensorFlow.js's WASM backend may start its threads. The lab's own servers are left as they are.
import { createServer } from 'vite';
import type { LabServer } from '../scripts/lab-browser';

export const ISOLATION_HEADERS = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export async function startIsolatedBenchServer(): Promise<LabServer> {
  const server = await createServer({
    configFile: 'vite.config.ts',
    logLevel: 'error',
    server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false, headers: ISOLATION_HEADERS },
  });
  await server.listen();
  const address = server.httpServer?.address();
  if (!address || typeof address === 'string') throw new Error('vite did not report its port');
  return { url: `http://127.0.0.1:${address.port}`, close: () => server.close() };
}

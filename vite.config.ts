import { defineConfig, type UserConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { labServerPlugin, NO_ICE, type LabServerPlugin } from './scripts/lab-server-plugin';

/**
 * The lab's Vite config. `npm start` (scripts/start.ts) builds it with its own lab-server plugin (LAN
 * origin, ICE servers, discovery on); `npm run dev` and the e2e server use the default one: the
 * signalling is served at /signal, and pages use it when given `signal=`.
 */
export function labViteConfig(labServer: LabServerPlugin = labServerPlugin({ discover: false, shareOrigin: null, allowOrigins: null, ice: NO_ICE })): UserConfig {
  return {
    plugins: [react(), labServer],
    // Scan every page up front: a dependency found late makes Vite reload the page, which would cut a
    // training tab (or a test) off mid-run.
    optimizeDeps: { entries: ['index.html', 'bench/*.html'] },
    // Headless runs (tests, swarm) turn hot reload off: an edit must never reload a training tab mid-run.
    // navigator.gpu only exists in a secure context: plain http is served on loopback only.
    server: { host: '127.0.0.1', port: 5173, strictPort: false, hmr: process.env.LAB_NO_HMR ? false : undefined },
    preview: { host: '127.0.0.1', port: 4173 },
    build: { target: 'es2022', sourcemap: true },
  };
}

export default defineConfig(labViteConfig());

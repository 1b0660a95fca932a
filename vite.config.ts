import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The lab is served from localhost: navigator.gpu only exists in a secure context.
export default defineConfig({
  plugins: [react()],
  // Scan every page up front: a dependency found late makes Vite reload the page, which would cut a
  // training tab (or a test) off mid-run.
  optimizeDeps: { entries: ['index.html', 'bench/*.html'] },
  // Headless runs (tests, swarm) turn hot reload off: an edit must never reload a training tab mid-run.
  server: { host: '127.0.0.1', port: 5173, strictPort: false, hmr: process.env.LAB_NO_HMR ? false : undefined },
  preview: { host: '127.0.0.1', port: 4173 },
  build: { target: 'es2022', sourcemap: true },
});

import { defineConfig } from '@playwright/test';
import { CHROMIUM_ARGS, requireChromium } from './scripts/chromium.ts';

// Multi-tab tests drive the real app in the system Chromium: real WebGPU (SwiftShader when there is no
// GPU), real WebRTC between tabs, and the real signalling server.
const APP_PORT = Number(process.env.LAB_E2E_PORT ?? 5180);
const SIGNAL_PORT = Number(process.env.LAB_E2E_SIGNAL_PORT ?? 8790);

export default defineConfig({
  testDir: 'e2e',
  outputDir: 'e2e-artifacts/results',
  timeout: 240_000,
  expect: { timeout: 60_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${APP_PORT}`,
    launchOptions: { executablePath: requireChromium(), args: CHROMIUM_ARGS },
    trace: 'off',
  },
  webServer: [
    {
      command: `npx vite --port ${APP_PORT} --strictPort`,
      env: { LAB_NO_HMR: '1' },
      url: `http://127.0.0.1:${APP_PORT}`,
      reuseExistingServer: !process.env.CI,
      timeout: 120_000,
    },
    {
      command: `npx tsx server/main.ts --port ${SIGNAL_PORT} --allow-origin http://127.0.0.1:${APP_PORT}`,
      url: `http://127.0.0.1:${SIGNAL_PORT}/health`,
      reuseExistingServer: !process.env.CI,
      timeout: 60_000,
    },
  ],
});

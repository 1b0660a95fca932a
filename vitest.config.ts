import { defineConfig } from 'vitest/config';
import { webgpuNodeEnv } from './scripts/chromium';

// GPU kernel tests run in Node through Dawn (the `webgpu` package) on the SwiftShader that Chromium
// ships. The dynamic loader reads LD_LIBRARY_PATH only at process start, so it is set here, before
// vitest forks its workers, which inherit it.
Object.assign(process.env, webgpuNodeEnv());

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'src/**/*.test.tsx', 'server/**/*.test.ts', 'scripts/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    environment: 'node',
  },
});

import { defineConfig } from 'vitest/config';

// The unit tests that mutation testing runs (stryker.config.mjs): those of the folders under mutation,
// in Node (the browser project of vitest.config.ts cannot run inside Stryker's sandbox).
const folders = (process.env.MUTATE ?? 'src/collective,src/parallel,src/train').split(',').map((f) => f.trim().replace(/\/$/, ''));

export default defineConfig({
  test: {
    include: folders.map((f) => `${f}/**/*.test.ts`),
    environment: 'node',
    testTimeout: 60_000,
  },
});

import { defineConfig } from 'vitest/config';

// The unit tests that mutation testing runs (stryker.config.mjs): those of the folders under mutation,
// in Node (the browser project of vitest.config.ts cannot run inside Stryker's sandbox).
const targets = (process.env.MUTATE ?? 'src/collective,src/parallel,src/train').split(',').map((f) => f.trim().replace(/\/$/, ''));
// A target is a folder, or one file (its folder's tests run against it).
const folders = [...new Set(targets.map((t) => (t.endsWith('.ts') ? t.slice(0, t.lastIndexOf('/')) : t)))];

export default defineConfig({
  test: {
    include: folders.map((f) => `${f}/**/*.test.ts`),
    environment: 'node',
    testTimeout: 60_000,
  },
});

import { defineConfig } from 'vitest/config';

// The unit tests that mutation testing runs (stryker.config.mjs), in Node (the browser project of
// vitest.config.ts cannot run inside Stryker's sandbox). MUTATE_TESTS (comma-separated test files, set by
// scripts/mutate.ts to the tests that import the mutated file) picks them; otherwise the tests of the
// folders under mutation (MUTATE, as in stryker.config.mjs).
// Two things keep a mutant cheap (docs/testing.md, "Speed"): scripts/mutate-setup.ts skips the few slow
// soak tests (scripts/mutate-left-out.ts), and `isolate: false` lets the one test worker keep the modules
// it imported from one mutant's run to the next (Stryker switches mutants through a global at run time,
// so nothing needs re-importing; with isolation every covering test file re-imported its module graph
// for every mutant).
const targets = (process.env.MUTATE || 'src/collective,src/parallel,src/train').split(',').map((f) => f.trim().replace(/\/$/, ''));
// A target is a folder, or one file (its folder's tests run against it).
const folders = [...new Set(targets.map((t) => (t.endsWith('.ts') ? t.slice(0, t.lastIndexOf('/')) : t)))];
const tests = (process.env.MUTATE_TESTS ?? '').split(',').filter((t) => t.length > 0);

export default defineConfig({
  test: {
    include: tests.length > 0 ? tests : folders.map((f) => `${f}/**/*.test.ts`),
    environment: 'node',
    setupFiles: ['scripts/mutate-setup.ts'],
    isolate: false,
    testTimeout: 60_000,
  },
});

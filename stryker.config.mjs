// Mutation testing (npm run mutate; docs/testing.md): Stryker changes one operator, constant or
// condition at a time in the code under test and runs the unit tests that cover it; a mutant that no
// test notices "survives" and points at a check the suite lacks. Not part of npm test: it is slow.
//
// MUTATE=src/parallel (comma-separated folders or files) narrows the run; default: the three folders whose
// arithmetic decides whether training is right (collectives, parallel strategies, the trainer).
const targets = (process.env.MUTATE ?? 'src/collective,src/parallel,src/train').split(',').map((f) => f.trim().replace(/\/$/, ''));
// A target is a folder, or one file (its folder's tests run against it).
const folders = [...new Set(targets.map((t) => (t.endsWith('.ts') ? t.slice(0, t.lastIndexOf('/')) : t)))];

export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts' },
  plugins: ['@stryker-mutator/vitest-runner'],
  mutate: [...targets.map((t) => (t.endsWith('.ts') ? t : `${t}/**/*.ts`)), '!**/*.test.ts', '!**/test-support.ts', '!**/fake-*.ts'],
  // Only the tests that cover a mutant run against it.
  coverageAnalysis: 'perTest',
  // Static mutants (module-level constants) would each need the whole suite: skipped.
  ignoreStatic: true,
  // The machine is shared: one test process at a time.
  concurrency: 1,
  // A mutant that loops forever is cut off soon after the slowest covering test's normal time.
  timeoutMS: 5_000,
  timeoutFactor: 1.5,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false, reportMutants: true, reportScoreTable: true },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};

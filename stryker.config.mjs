// Mutation testing (npm run mutate; docs/testing.md): Stryker changes one operator, constant or
// condition at a time in the code under test and runs the unit tests that cover it; a mutant that no
// test notices "survives" and points at a check the suite lacks. Not part of npm test: it is slow.
//
// `npm run mutate` runs scripts/mutate.ts, which calls Stryker once per source file with the variables
// below set, keeps each file's report and prints the scores. Stryker can also be run whole with
// `npx stryker run`: MUTATE=src/parallel (comma-separated folders or files) narrows it; default: the
// three folders whose arithmetic decides whether training is right (collectives, parallel strategies,
// the trainer).
//   MUTATE_TESTS       the test files to run (vitest.mutate.config.ts); default: the targets' folders' tests
//   MUTATE_REPORT      where the JSON report goes; when set, only the JSON and clear-text reporters run
//   MUTATE_INCREMENTAL Stryker's incremental file: mutants whose code and covering tests are unchanged
//                      since that report keep their result instead of running again
const targets = (process.env.MUTATE || 'src/collective,src/parallel,src/train').split(',').map((f) => f.trim().replace(/\/$/, ''));
const report = process.env.MUTATE_REPORT;
const incremental = process.env.MUTATE_INCREMENTAL;

export default {
  testRunner: 'vitest',
  // With MUTATE_TESTS the tests are chosen already (by their imports, type-only ones included); vitest's
  // own choice (`related`) finds none for a file that only declares types.
  vitest: { configFile: 'vitest.mutate.config.ts', related: !process.env.MUTATE_TESTS },
  plugins: ['@stryker-mutator/vitest-runner'],
  // Test scaffolding is not mutated (scripts/mutate-plan.ts isTestHelper names the same files).
  mutate: [
    ...targets.map((t) => (t.endsWith('.ts') ? t : `${t}/**/*.ts`)),
    '!**/*.test.ts',
    '!**/test-support.ts',
    '!**/*-test-support.ts',
    '!**/*-test-kit.ts',
    '!**/fake-*.ts',
  ],
  // Only the tests that cover a mutant run against it.
  coverageAnalysis: 'perTest',
  // Static mutants (module-level constants) would each need the whole suite: skipped.
  ignoreStatic: true,
  // The machine is shared: one test process at a time.
  concurrency: 1,
  // A mutant that loops forever is cut off soon after the slowest covering test's normal time.
  timeoutMS: 5_000,
  timeoutFactor: 1.5,
  // Copied into every sandbox otherwise; no unit test under mutation reads them.
  ignorePatterns: ['public/data', 'dist', 'test-results', 'playwright-report', 'e2e-artifacts'],
  ...(incremental ? { incremental: true, incrementalFile: incremental } : {}),
  reporters: report ? ['json', 'clear-text'] : ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: report ?? 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false, reportMutants: true, reportScoreTable: true },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};

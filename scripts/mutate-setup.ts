// A vitest setup file of mutation runs only (vitest.mutate.config.ts): skips the slow soak tests listed in
// scripts/mutate-left-out.ts, so that no mutant pays for them. Stryker sees them as skipped, records no
// coverage for them and never runs them against a mutant.
import { beforeEach } from 'vitest';
import { leftOutOfMutation } from './mutate-left-out';

beforeEach((context) => {
  const file = context.task.file.filepath ?? context.task.file.name;
  if (leftOutOfMutation(file, context.task.name)) context.skip('left out of mutation runs: a slow soak test (scripts/mutate-left-out.ts)');
});

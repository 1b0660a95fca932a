// The unit tests that mutation runs leave out (scripts/mutate-setup.ts skips them there, and only there:
// `npm test` runs them as always). Each is a soak or outcome test that trains for seconds (times below:
// one run on the shared 2-core machine) and re-checks arithmetic that faster tests of the same file
// already pin bit for bit; run against every mutant it covers, it would cost its seconds each time
// (the PowerSGD soak alone made every powersgd-sync.ts mutant cost over 20 s). A mutant that only such
// a test would catch counts as surviving, so leaving one out can only lower the score, never lift it.
// Matched by file and by the start of the test's name (a name may end in interpolated figures).
export const LEFT_OUT_OF_MUTATION: ReadonlyArray<{ file: string; name: string; ms: number }> = [
  { file: 'src/parallel/powersgd-sync.test.ts', name: '4 ranks, 300 steps of spirals', ms: 21_801 },
  { file: 'src/parallel/zero/zero-memory.test.ts', name: 'stage 2 holds one gradient slot', ms: 9_800 },
  { file: 'src/parallel/zero/zero-memory.test.ts', name: 'a deeper MLP on 4 ranks', ms: 7_710 },
  { file: 'src/parallel/zero/zero-gpt.test.ts', name: 'text samples: every rank of a 2-rank room', ms: 5_923 },
];

/** Whether the test `name` of test file `file` (path relative to the repository root) is left out. */
export function leftOutOfMutation(file: string, name: string): boolean {
  const normalized = file.replace(/\\/g, '/');
  return LEFT_OUT_OF_MUTATION.some((t) => normalized.endsWith(t.file) && name.startsWith(t.name));
}

// The list of tests that mutation runs skip: matching by file and name start, and every entry names a
// test that exists (a renamed test must not silently come back into, or stay out of, mutation runs).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LEFT_OUT_OF_MUTATION, leftOutOfMutation } from './mutate-left-out';

describe('tests left out of mutation runs', () => {
  it('matches a listed test by its file (absolute or sandboxed path) and the start of its name only', () => {
    const [first] = LEFT_OUT_OF_MUTATION;
    expect(leftOutOfMutation(`/work/x/.stryker-tmp/sandbox-1/${first.file}`, `${first.name} and more`)).toBe(true);
    expect(leftOutOfMutation(first.file, `x ${first.name}`)).toBe(false);
    expect(leftOutOfMutation('src/other.test.ts', first.name)).toBe(false);
  });

  it('every entry names a test that its file declares', () => {
    for (const { file, name } of LEFT_OUT_OF_MUTATION) expect(readFileSync(file, 'utf8'), `${file}: "${name}"`).toContain(name);
  });
});

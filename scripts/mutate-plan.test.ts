import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TARGETS,
  type Part,
  importClosure,
  importsOf,
  isTestHelper,
  parseTargets,
  partFileName,
  partKey,
  planParts,
  selectMutated,
  testFolderOf,
} from './mutate-plan';

// A small repository in memory: path -> text.
const repo: Record<string, string> = {
  'src/train/optimizer.ts': `import { clip } from './clip';\nexport const step = 1;`,
  'src/train/clip.ts': `export function clip() {}`,
  'src/train/optimizer.test.ts': `import { step } from './optimizer';\nimport { helper } from './test-support';`,
  'src/train/test-support.ts': `export const helper = 1;`,
  'src/train/unrelated.test.ts': `import { x } from '../model/x';`,
  'src/train/types.ts': `export interface T { a: number }`,
  'src/train/types-user.test.ts': `import type { T } from './types';`,
  'src/model/x.ts': `export const x = 1;`,
  'src/parallel/dp.ts': `import { step } from '../train/optimizer';`,
  'src/parallel/dp.test.ts': `import { step } from './dp';\nconst later = await import('./zero/index');`,
  'src/parallel/zero/index.ts': `export * from './sync';`,
  'src/parallel/zero/sync.ts': `export const s = 2;`,
  'src/parallel/fake-mesh.ts': `export const m = 1;`,
  'src/parallel/pipeline-test-support.ts': `export const p = 1;`,
};
const files = Object.keys(repo);
const exists = (p: string) => p in repo;
const read = (p: string) => {
  const text = repo[p];
  if (text === undefined) throw new Error(`no ${p}`);
  return text;
};
const imports = (p: string) => importsOf(p, read(p), exists);
const tests = files.filter((f) => f.endsWith('.test.ts'));

describe('mutation driver: what is mutated', () => {
  it('MUTATE lists folders or files, comma-separated, trailing slashes dropped; unset or empty gives the three default folders', () => {
    expect(parseTargets('src/parallel/, src/train/optimizer.ts')).toEqual(['src/parallel', 'src/train/optimizer.ts']);
    expect(parseTargets(undefined)).toEqual(DEFAULT_TARGETS);
    expect(parseTargets(' , ')).toEqual(DEFAULT_TARGETS);
  });

  it('a folder target mutates its source files (subfolders included) but never tests or test helpers', () => {
    expect(selectMutated(['src/parallel'], files)).toEqual(['src/parallel/dp.ts', 'src/parallel/zero/index.ts', 'src/parallel/zero/sync.ts']);
    expect(isTestHelper('src/parallel/pipeline-test-support.ts')).toBe(true);
    expect(isTestHelper('src/collective/schedule-test-kit.ts')).toBe(true);
    expect(isTestHelper('src/parallel/fake-mesh.ts')).toBe(true);
    expect(isTestHelper('src/train/optimizer.ts')).toBe(false);
  });

  it('a file target is itself; targets keep their order and a file named twice is mutated once', () => {
    expect(selectMutated(['src/train/clip.ts', 'src/train'], files)).toEqual(['src/train/clip.ts', 'src/train/optimizer.ts', 'src/train/types.ts']);
  });

  it('a target that names nothing is refused with its name (a typo must not look like a perfect score)', () => {
    expect(() => selectMutated(['src/trian'], files)).toThrow(/"src\/trian"/);
  });
});

describe('mutation driver: which tests cover a file', () => {
  it('resolves relative imports with and without extension, folder indexes, dynamic imports and re-exports; packages are left out', () => {
    expect(importsOf('src/parallel/dp.test.ts', read('src/parallel/dp.test.ts'), exists)).toEqual(['src/parallel/dp.ts', 'src/parallel/zero/index.ts']);
    expect(importsOf('src/parallel/zero/index.ts', read('src/parallel/zero/index.ts'), exists)).toEqual(['src/parallel/zero/sync.ts']);
    expect(importsOf('a.ts', `import { it } from 'vitest';\nimport { y } from './y.ts';`, (p) => p === 'y.ts')).toEqual(['y.ts']);
  });

  it('the import closure follows imports transitively and terminates on cycles', () => {
    const graph: Record<string, string[]> = { a: ['b'], b: ['c', 'a'], c: [] };
    expect([...importClosure('a', (p) => graph[p] ?? [])].sort()).toEqual(['a', 'b', 'c']);
  });

  it("a file is covered by the tests of its own top folder that reach it, type-only imports included; another folder's tests do not count", () => {
    const parts = planParts(['src/train/optimizer.ts', 'src/train/clip.ts', 'src/train/types.ts', 'src/parallel/zero/sync.ts'], tests, imports);
    const byFile = Object.fromEntries(parts.map((p) => [p.file, p]));
    // src/parallel/dp.test.ts reaches optimizer.ts too, but it is not a src/train test.
    expect(byFile['src/train/optimizer.ts']).toEqual({ file: 'src/train/optimizer.ts', tests: ['src/train/optimizer.test.ts'], helpers: ['src/train/test-support.ts'] });
    expect(byFile['src/train/clip.ts'].tests).toEqual(['src/train/optimizer.test.ts']);
    expect(byFile['src/train/types.ts'].tests).toEqual(['src/train/types-user.test.ts']);
    expect(byFile['src/parallel/zero/sync.ts'].tests).toEqual(['src/parallel/dp.test.ts']);
    expect(testFolderOf('src/parallel/zero/sync.ts')).toBe('src/parallel');
  });
});

describe("mutation driver: a file its own folder's tests do not reach", () => {
  // src/parallel/moe.ts is driven only by a src/lab test (as src/parallel/moe-gpt-trainer.ts is by
  // src/lab/expert-run.test.ts); src/parallel/dp.ts is reached by that test too, and by its own.
  const labRepo: Record<string, string> = {
    'src/parallel/moe.ts': `import { dp } from './dp';`,
    'src/parallel/dp.ts': `export const dp = 1;`,
    'src/parallel/dp.test.ts': `import { dp } from './dp';`,
    'src/parallel/alone.ts': `export const alone = 1;`,
    'src/lab/run.ts': `import { moe } from '../parallel/moe';`,
    'src/lab/run.test.ts': `import { run } from './run';\nimport { helper } from './lab-test-support';`,
    'src/lab/lab-test-support.ts': `export const helper = 1;`,
    'src/ui/view.test.ts': `import { run } from '../lab/run';`,
    'src/ui/other.test.ts': `export {};`,
  };
  const labFiles = Object.keys(labRepo);
  const labImports = (p: string) => importsOf(p, labRepo[p] as string, (q) => q in labRepo);
  const labTests = labFiles.filter((f) => f.endsWith('.test.ts'));
  const plan = planParts(['src/parallel/moe.ts', 'src/parallel/dp.ts', 'src/parallel/alone.ts'], labTests, labImports);
  const byFile = Object.fromEntries(plan.map((p) => [p.file, p]));

  it("falls back to the tests of other folders that reach it, with their helpers (else it could not be measured at all)", () => {
    expect(byFile['src/parallel/moe.ts']).toEqual({ file: 'src/parallel/moe.ts', tests: ['src/lab/run.test.ts', 'src/ui/view.test.ts'], helpers: ['src/lab/lab-test-support.ts'] });
  });

  it("a file its own folder covers keeps exactly its own folder's tests, so its part and stored key do not change", () => {
    expect(byFile['src/parallel/dp.ts']).toEqual({ file: 'src/parallel/dp.ts', tests: ['src/parallel/dp.test.ts'], helpers: [] });
    const ownOnly = planParts(['src/parallel/dp.ts'], labTests.filter((t) => t.startsWith('src/parallel/')), labImports);
    const text = (p: string) => labRepo[p] as string;
    expect(partKey(byFile['src/parallel/dp.ts'], text, {})).toBe(partKey(ownOnly[0], text, {}));
  });

  it('a file no test reaches still has no tests (the driver reports it as not measured)', () => {
    expect(byFile['src/parallel/alone.ts'].tests).toEqual([]);
  });
});

describe('mutation driver: the key a part is stored under', () => {
  const part: Part = { file: 'src/train/optimizer.ts', tests: ['src/train/optimizer.test.ts'], helpers: ['src/train/test-support.ts'] };
  const configs = { 'stryker.config.mjs': 'a', '@stryker-mutator/core': '9.6.1' };
  const keyWith = (path: string, text: string) => partKey(part, (p) => (p === path ? text : read(p)), configs);
  const key = partKey(part, read, configs);

  it('is stable for the same inputs and changes with the mutated file, a covering test, a helper or a config', () => {
    expect(partKey(part, read, { ...configs })).toBe(key);
    expect(key).toMatch(/^[0-9a-f]{16}$/);
    const changed = [
      keyWith('src/train/optimizer.ts', `${read('src/train/optimizer.ts')} `),
      keyWith('src/train/optimizer.test.ts', `${read('src/train/optimizer.test.ts')}\n`),
      keyWith('src/train/test-support.ts', 'export const helper = 2;'),
      partKey(part, read, { ...configs, '@stryker-mutator/core': '9.6.2' }),
      partKey({ ...part, tests: [...part.tests, 'src/train/types-user.test.ts'] }, read, configs),
    ];
    for (const k of changed) expect(k).not.toBe(key);
    expect(new Set(changed).size).toBe(changed.length);
  });

  it('does not change when a file outside the part changes', () => {
    expect(keyWith('src/model/x.ts', 'export const x = 2;')).toBe(key);
  });

  it('cannot be forged by moving text between the hashed files (each is framed by its name and length)', () => {
    const split: Part = { file: 'm.ts', tests: ['t.test.ts'], helpers: [] };
    const a = partKey(split, (p) => ({ 'm.ts': 'ab', 't.test.ts': 'c' })[p] as string, {});
    const b = partKey(split, (p) => ({ 'm.ts': 'a', 't.test.ts': 'bc' })[p] as string, {});
    expect(a).not.toBe(b);
  });

  it('names the stored part by the flattened path and the key', () => {
    expect(partFileName('src/parallel/zero/zero-sync.ts', 'abc')).toBe('src__parallel__zero__zero-sync.ts.abc.json');
  });
});

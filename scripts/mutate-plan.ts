// What the mutation driver (scripts/mutate.ts) runs, as pure functions of file names and contents: which
// source files are mutated (MUTATE= targets), which unit tests cover each one (the test files of the same
// top folder that reach it through their imports, or other folders' when its own has none), and the key a finished part is stored under. The key
// hashes the mutated file, the covering tests, the test helpers they import and the mutation configs, so
// a part is redone exactly when one of them changed and skipped otherwise. No file system access here:
// the driver reads the files and hands their text in, which keeps all of this unit-testable.
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import ts from 'typescript';

/** The folders measured when MUTATE is not set: their arithmetic decides whether training is right. */
export const DEFAULT_TARGETS = ['src/collective', 'src/parallel', 'src/train'];

/** Bumped when the meaning of a stored part changes (what is hashed, how a part is run). */
export const PART_FORMAT = 'mutate-part-v1';

/** A test file (not mutated; it runs against the mutants). */
export function isTestFile(path: string): boolean {
  return /\.test\.tsx?$/.test(path);
}

/** Test scaffolding that Stryker leaves unmutated (stryker.config.mjs excludes the same names). */
export function isTestHelper(path: string): boolean {
  const name = posix.basename(path);
  return name === 'test-support.ts' || name.startsWith('fake-') || name.endsWith('-test-support.ts') || name.endsWith('-test-kit.ts');
}

/** MUTATE=a,b/ -> ['a', 'b']; empty or unset -> the default folders. */
export function parseTargets(env: string | undefined): string[] {
  const targets = (env ?? '')
    .split(',')
    .map((t) => t.trim().replace(/\/+$/, ''))
    .filter((t) => t.length > 0);
  return targets.length > 0 ? targets : DEFAULT_TARGETS;
}

/**
 * The source files to mutate: every .ts file named by a target or lying under a target folder, minus
 * tests and test helpers, in target order (then by path), each once. A target that matches nothing is an
 * error: a typo must not turn into an empty, perfect-looking run.
 */
export function selectMutated(targets: string[], allFiles: string[]): string[] {
  const chosen: string[] = [];
  for (const target of targets) {
    const matches = allFiles
      .filter((f) => (f === target || f.startsWith(`${target}/`)) && /\.tsx?$/.test(f))
      .filter((f) => !isTestFile(f) && !isTestHelper(f))
      .sort();
    if (matches.length === 0 && !allFiles.includes(target)) {
      throw new Error(`MUTATE target "${target}" names no source file (expected a folder or a .ts file under the repository root)`);
    }
    for (const m of matches) if (!chosen.includes(m)) chosen.push(m);
  }
  return chosen;
}

/** The top folder whose tests run against a file: src/<folder> (src/parallel/zero/x.ts -> src/parallel). */
export function testFolderOf(path: string): string {
  const parts = path.split('/');
  return parts[0] === 'src' && parts.length > 2 ? `src/${parts[1]}` : posix.dirname(path);
}

/**
 * The repository files a module imports (static, dynamic and type-only imports, and re-exports), resolved
 * like the bundler does for relative specifiers: as written, then with .ts/.tsx, then as a folder's
 * index. Package imports are left out (they are not under mutation and not hashed).
 */
export function importsOf(path: string, text: string, exists: (p: string) => boolean): string[] {
  const info = ts.preProcessFile(text, true, true);
  const found: string[] = [];
  for (const { fileName } of info.importedFiles) {
    if (!fileName.startsWith('.')) continue;
    const base = posix.normalize(posix.join(posix.dirname(path), fileName));
    const candidates = [base, `${base}.ts`, `${base}.tsx`, `${base}/index.ts`, `${base}/index.tsx`];
    const hit = candidates.find((c) => /\.tsx?$/.test(c) && exists(c));
    if (hit && !found.includes(hit)) found.push(hit);
  }
  return found;
}

/** Every file reachable from `start` through the import graph (start included). */
export function importClosure(start: string, imports: (p: string) => string[]): Set<string> {
  const seen = new Set<string>([start]);
  const queue = [start];
  while (queue.length > 0) {
    const next = queue.pop() as string;
    for (const dep of imports(next)) {
      if (!seen.has(dep)) {
        seen.add(dep);
        queue.push(dep);
      }
    }
  }
  return seen;
}

/** One unit of work for Stryker: a mutated file and the tests that run against it. */
export interface Part {
  file: string;
  /**
   * Test files of the file's top folder whose import closure contains it (sorted); when there are none,
   * the test files of other folders whose closure contains it (see planParts).
   */
  tests: string[];
  /** Test helpers those tests import (hashed: a changed helper can change a verdict). */
  helpers: string[];
}

/**
 * Plans one part per mutated file. `imports` gives a file's direct repository imports (importsOf);
 * `testFiles` are all unit test files under consideration (the driver passes the Node project's: a
 * test that needs the browser cannot run in Stryker's sandbox).
 *
 * A file's tests are those of its own top folder that reach it. Only a file that none of them reaches
 * falls back to the tests of other folders that do (src/parallel/moe-gpt-trainer.ts is driven by
 * src/lab's tests alone): without them it could not be measured at all. The fallback never applies to
 * a file its own folder covers, so such a file's part, and the key it is stored under, stay as they were.
 */
export function planParts(mutated: string[], testFiles: string[], imports: (p: string) => string[]): Part[] {
  const closures = new Map(testFiles.map((t) => [t, importClosure(t, imports)]));
  return mutated.map((file) => {
    const folder = testFolderOf(file);
    const reaching = testFiles.filter((t) => closures.get(t)?.has(file));
    const own = reaching.filter((t) => t.startsWith(`${folder}/`));
    const tests = (own.length > 0 ? own : reaching).sort();
    const helpers = [...new Set(tests.flatMap((t) => [...(closures.get(t) ?? [])].filter(isTestHelper)))].sort();
    return { file, tests, helpers };
  });
}

/**
 * The key a part's result is stored under: sha256 over the format version, the configs (their text),
 * and the path and text of the mutated file, each covering test and each helper. Any change to one of
 * them gives a new key; nothing else does (a change elsewhere in the code the tests use is not seen:
 * MUTATE_FORCE=1 redoes every part).
 */
export function partKey(part: Part, read: (p: string) => string, configs: Record<string, string>): string {
  const hash = createHash('sha256');
  const add = (label: string, value: string) => hash.update(`${label}\u0000${value.length}\u0000${value}\u0000`);
  add('format', PART_FORMAT);
  for (const name of Object.keys(configs).sort()) add(`config:${name}`, configs[name]);
  add(`mutated:${part.file}`, read(part.file));
  for (const t of part.tests) add(`test:${t}`, read(t));
  for (const h of part.helpers) add(`helper:${h}`, read(h));
  return hash.digest('hex').slice(0, 16);
}

/** A file name for a part's stored report: the source path made flat, then the key. */
export function partFileName(file: string, key: string): string {
  return `${slugOf(file)}.${key}.json`;
}

/** src/parallel/zero/zero-sync.ts -> src__parallel__zero__zero-sync.ts */
export function slugOf(file: string): string {
  return file.replace(/\//g, '__');
}

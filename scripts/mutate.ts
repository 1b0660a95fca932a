// `npm run mutate`: mutation testing of src/collective, src/parallel and src/train (MUTATE= narrows:
// comma-separated folders or files), resumable on a small machine. Stryker runs once per source file
// (a "part") against the unit tests of its folder that import it; each finished part's JSON report is
// kept under reports/mutation/parts/, named by a key that hashes the file, those tests, their helpers and
// the configs (scripts/mutate-plan.ts). A rerun skips parts whose key is unchanged and redoes the others,
// so the run can be stopped at any point (Ctrl-C, a killed shell) and continued later; only the part in
// flight is lost. At the end it prints the score per file, per folder and in total, with and without
// timeouts (scripts/mutate-report.ts), and writes reports/mutation/summary.{md,json}.
//
// Environment: MUTATE (targets), MUTATE_FORCE=1 (redo every part), MUTATE_SUMMARY_ONLY=1 (print the
// summary of what is stored, run nothing), MUTATE_DEADLINE (ISO time: start no part after it),
// MUTATE_CONCURRENCY (Stryker's test processes; default the config's 1, for a shared machine: on a machine
// of its own, its core count; verdicts do not depend on it, so stored parts stay valid).
import { execSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { createRequire } from 'node:module';
import { type Part, importsOf, parseTargets, partFileName, partKey, planParts, selectMutated, slugOf, testFolderOf, isTestFile } from './mutate-plan';
import { type Counts, type StrykerReport, countsOfReport, markdownTable, summarize, emptyCounts, addCounts } from './mutate-report';

const ROOT = 'reports/mutation';
const PARTS = `${ROOT}/parts`;
const LOGS = `${ROOT}/logs`;
// Everything that decides how a part runs: a change to one redoes every part.
const CONFIGS = ['stryker.config.mjs', 'vitest.mutate.config.ts', 'scripts/mutate-setup.ts', 'scripts/mutate-left-out.ts'];

/** What a finished part's file holds: the key's inputs, when and how long, and Stryker's report. */
interface StoredPart {
  format: string;
  file: string;
  key: string;
  tests: string[];
  helpers: string[];
  commit: string;
  finishedAt: string;
  wallMs: number;
  report: StrykerReport;
}

function sh(cmd: string): string {
  return execSync(cmd, { encoding: 'utf8' }).trim();
}

function repositoryFiles(): string[] {
  return sh('git ls-files -co --exclude-standard')
    .split('\n')
    .filter((f) => f.length > 0 && existsSync(f));
}

function strykerVersion(): string {
  const require = createRequire(import.meta.url);
  return (require('@stryker-mutator/core/package.json') as { version: string }).version;
}

function readStored(path: string): StoredPart | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as StoredPart;
  } catch {
    return undefined;
  }
}

/** Runs Stryker on one part; resolves with its exit code. Output goes to the part's log. */
function runStryker(part: Part, reportPath: string, logPath: string, force: boolean): Promise<{ code: number; wallMs: number }> {
  const started = Date.now();
  const log = createWriteStream(logPath);
  // --force: the incremental file's results are not reused either.
  const concurrency = process.env.MUTATE_CONCURRENCY ? ['--concurrency', process.env.MUTATE_CONCURRENCY] : [];
  const child = spawn('npx', ['stryker', 'run', 'stryker.config.mjs', ...(force ? ['--force'] : []), ...concurrency], {
    env: {
      ...process.env,
      MUTATE: part.file,
      MUTATE_TESTS: part.tests.join(','),
      MUTATE_REPORT: reportPath,
      MUTATE_INCREMENTAL: `${PARTS}/${slugOf(part.file)}.incremental.json`,
      FORCE_COLOR: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: npx does not pass a signal on to Stryker, so an interrupt signals the group.
    detached: true,
  });
  current = child;
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      current = undefined;
      log.end();
      resolve({ code: code ?? 1, wallMs: Date.now() - started });
    });
  });
}

let current: ReturnType<typeof spawn> | undefined;
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    stopping = true;
    console.log(`\n${signal}: stopping; finished parts are kept, the one in flight is redone next time`);
    if (current?.pid !== undefined) process.kill(-current.pid, 'SIGINT');
    if (!current) process.exit(130);
  });
}

const fmtMs = (ms: number) => {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
};

async function main(): Promise<void> {
  const targets = parseTargets(process.env.MUTATE);
  const force = process.env.MUTATE_FORCE === '1';
  const summaryOnly = process.env.MUTATE_SUMMARY_ONLY === '1';
  const deadline = process.env.MUTATE_DEADLINE ? Date.parse(process.env.MUTATE_DEADLINE) : Number.POSITIVE_INFINITY;
  if (Number.isNaN(deadline)) throw new Error(`MUTATE_DEADLINE "${process.env.MUTATE_DEADLINE}" is not a time (expected e.g. 2026-12-06T23:15:00Z)`);
  const concurrency = process.env.MUTATE_CONCURRENCY;
  if (concurrency !== undefined && !/^[1-9][0-9]*$/.test(concurrency)) throw new Error(`MUTATE_CONCURRENCY "${concurrency}" is not a positive whole number`);

  const all = repositoryFiles();
  const testFiles = all.filter((f) => f.startsWith('src/') && isTestFile(f) && !f.startsWith('src/gpu/'));
  const importCache = new Map<string, string[]>();
  const imports = (p: string) => {
    let found = importCache.get(p);
    if (!found) {
      found = importsOf(p, readFileSync(p, 'utf8'), existsSync);
      importCache.set(p, found);
    }
    return found;
  };
  const parts = planParts(selectMutated(targets, all), testFiles, imports);
  const configs = Object.fromEntries(CONFIGS.map((c) => [c, readFileSync(c, 'utf8')]));
  configs['@stryker-mutator/core'] = strykerVersion();
  const read = (p: string) => readFileSync(p, 'utf8');
  const keyed = parts.map((part) => ({ part, key: partKey(part, read, configs) }));
  const commit = sh('git rev-parse --short HEAD') + (sh('git status --porcelain --untracked-files=no') ? '+dirty' : '');

  mkdirSync(PARTS, { recursive: true });
  mkdirSync(LOGS, { recursive: true });
  const todo = keyed.filter(({ part, key }) => force || !existsSync(`${PARTS}/${partFileName(part.file, key)}`));
  console.log(`mutate: ${parts.length} files in ${targets.join(', ')}; ${parts.length - todo.length} stored, ${todo.length} to run (commit ${commit})`);

  const runStarted = Date.now();
  const failed: string[] = [];
  if (!summaryOnly) {
    // A killed earlier run can leave sandboxes behind; no other Stryker of this worktree runs now.
    rmSync('.stryker-tmp', { recursive: true, force: true });
    let done = 0;
    for (const { part } of todo) {
      if (stopping) break;
      if (Date.now() > deadline) {
        console.log(`mutate: deadline ${process.env.MUTATE_DEADLINE} passed; ${todo.length - done} parts left for the next run`);
        break;
      }
      done++;
      const label = `[${done}/${todo.length}] ${part.file}`;
      if (part.tests.length === 0) {
        console.log(`${label}: no unit test reaches it (in ${testFolderOf(part.file)} or, failing that, elsewhere); not measured`);
        failed.push(part.file);
        continue;
      }
      // Keyed by the files as they are now, when the sandbox copies them (they may have changed since the
      // plan was made: a part is never stored under a key its inputs did not have).
      const key = partKey(part, read, configs);
      const tmp = `${PARTS}/${slugOf(part.file)}.running.json`;
      rmSync(tmp, { force: true });
      const logPath = `${LOGS}/${slugOf(part.file)}.log`;
      process.stdout.write(`${label} (${part.tests.length} test files) ... `);
      const { code, wallMs } = await runStryker(part, tmp, logPath, force);
      if (code !== 0 || !existsSync(tmp)) {
        console.log(stopping ? 'interrupted' : `failed (exit ${code}; see ${logPath})`);
        if (!stopping) failed.push(part.file);
        continue;
      }
      const report = JSON.parse(readFileSync(tmp, 'utf8')) as StrykerReport;
      const stored: StoredPart = { format: 'stored-part-v1', file: part.file, key, tests: part.tests, helpers: part.helpers, commit, finishedAt: new Date().toISOString(), wallMs, report };
      // Older parts of this file (other keys) are superseded; the incremental file keeps what they knew.
      for (const old of readdirSync(PARTS)) {
        if (old.startsWith(`${slugOf(part.file)}.`) && old.endsWith('.json') && !old.endsWith('.incremental.json') && !old.endsWith('.running.json')) rmSync(`${PARTS}/${old}`);
      }
      writeFileSync(`${PARTS}/${partFileName(part.file, key)}.tmp`, JSON.stringify(stored));
      renameSync(`${PARTS}/${partFileName(part.file, key)}.tmp`, `${PARTS}/${partFileName(part.file, key)}`);
      rmSync(tmp, { force: true });
      const c = [...countsOfReport(report).values()].reduce(addCounts, emptyCounts());
      console.log(`${fmtMs(wallMs)}: ${c.mutants} mutants, ${c.killed} killed, ${c.timeout} timeout, ${c.survived} survived, ${c.noCoverage} no coverage`);
    }
  }

  // The summary covers every planned file whose stored part matches its current key.
  // A file without a part for its current key is counted from its last part, if any, marked stale.
  const finished = new Map<string, Counts>();
  const stale = new Set<string>();
  let partsWallMs = 0;
  const commits = new Set<string>();
  const storedFiles = readdirSync(PARTS);
  for (const { part, key } of keyed) {
    let stored = readStored(`${PARTS}/${partFileName(part.file, key)}`);
    if (!stored) {
      const older = storedFiles.find((f) => f.startsWith(`${slugOf(part.file)}.`) && /^[0-9a-f]{16}\.json$/.test(f.slice(slugOf(part.file).length + 1)));
      stored = older ? readStored(`${PARTS}/${older}`) : undefined;
      if (stored) stale.add(part.file);
    }
    if (!stored) continue;
    const counts = countsOfReport(stored.report).get(part.file) ?? emptyCounts();
    finished.set(part.file, counts);
    partsWallMs += stored.wallMs;
    commits.add(stored.commit);
  }
  const summary = summarize(
    parts.map(({ file }) => ({ file, folder: testFolderOf(file) })),
    finished,
    stale,
  );
  const table = markdownTable([...summary.files, ...summary.folders, summary.total]);
  const lines = [
    `Mutation score (npm run mutate, MUTATE=${targets.join(',')}), parts measured at commit(s) ${[...commits].join(', ') || 'none'}`,
    `${finished.size} of ${parts.length} files measured (${stale.size} of them stale); Stryker wall clock of the measured parts: ${fmtMs(partsWallMs)}`,
    '',
    table,
    '',
    summary.pending.length === 0 ? 'Nothing pending.' : `Pending (${summary.pending.length}): ${summary.pending.join(', ')}`,
    summary.stale.length === 0 ? 'Nothing stale.' : `Stale (measured before their code or tests changed; the next run redoes them): ${summary.stale.join(', ')}`,
  ];
  console.log(`\n${lines.join('\n')}\nThis run: ${fmtMs(Date.now() - runStarted)}.`);
  writeFileSync(`${ROOT}/summary.md`, `${lines.join('\n')}\n`);
  writeFileSync(`${ROOT}/summary.json`, `${JSON.stringify({ targets, commits: [...commits], partsWallMs, ...summary }, null, 2)}\n`);
  if (failed.length > 0) {
    console.log(`Not measured: ${failed.join(', ')}`);
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(2);
});

// `npm run bench:cpu-gpt`: one training step of the lab's GPT recipe (src/train/defaults.ts `sotu`:
// 2 layers, 4 heads, 64 wide, 16 sequences of 64 characters, AdamW, clip) on the fast CPU backend
// (WasmCpuBackend) in Node, in the same run on 1 thread, on 2 threads with only the matmul product
// split (threadedOps ['matmul']: the backend before attention, layer norm, GELU, softmax cross-entropy
// and the packing were split too) and on 2 threads with every op kind split, and where that step's time
// goes per op kind. The configurations take turns round by round (so that each sees the same load on a
// shared machine) and each keeps its median step; the per-op profile is a separate pass (its timers cost
// a little per call) whose sum is printed beside the untimed step; it gives each op's wall time and its
// CPU time (all threads of the process: on a busy machine the wall time counts waiting for a core, CPU
// time does not, so on one thread CPU time is the op's cost on a free core). Prints the load average
// before and after, a table, then a last line of JSON.
// Options: --steps N (timed steps per round, default 10), --rounds N (default 3), --profile-steps N
// (default 5), --threads N (the threaded configurations' count, default 2).
import { loadavg } from 'node:os';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../src/engine/backend';
import { type KernelLoadOptions } from '../src/engine/wasm-kernels';
import { WasmCpuBackend } from '../src/engine/wasm-backend';
import { SOTU_TRAIN_FILE, SOTU_VAL_FILE, textDataFromSplits } from '../src/data/text';
import { defaults } from '../src/train/defaults';
import { charLmRun } from '../src/train/recipes';
import { buildWasm } from '../scripts/build-wasm';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

function positiveInteger(name: string, fallback: number): number {
  const value = Number(option(name, String(fallback)));
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`--${name} must be a whole number >= 1, got ${option(name, '')}`);
  return value;
}

interface Config {
  name: string;
  options: KernelLoadOptions;
}

/**
 * Milliseconds spent in each backend method, counting only outermost calls (an op calling another counts
 * once): wall clock, and this process's CPU time (all its threads), which a busy machine does not inflate.
 */
type Profile = Map<string, { ms: number; cpuMs: number; calls: number }>;

/** Wraps every method of `backend` (an instance: its own property shadows the prototype's) with a timer. */
function instrument(backend: Backend): { profile: Profile; stop(): void } {
  const profile: Profile = new Map();
  const target = backend as unknown as Record<string, unknown>;
  const names = new Set<string>();
  for (let proto = Object.getPrototypeOf(backend); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      const descriptor = Object.getOwnPropertyDescriptor(proto, name);
      if (name !== 'constructor' && descriptor && typeof descriptor.value === 'function') names.add(name);
    }
  }
  let depth = 0;
  for (const name of names) {
    const original = target[name] as (...args: unknown[]) => unknown;
    target[name] = function (this: unknown, ...args: unknown[]) {
      if (depth > 0) return original.apply(this, args);
      depth++;
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      try {
        return original.apply(this, args);
      } finally {
        const cpu = process.cpuUsage(cpu0);
        const entry = profile.get(name) ?? { ms: 0, cpuMs: 0, calls: 0 };
        entry.ms += performance.now() - t0;
        entry.cpuMs += (cpu.user + cpu.system) / 1000;
        entry.calls++;
        profile.set(name, entry);
        depth--;
      }
    };
  }
  return { profile, stop: () => names.forEach((name) => delete target[name]) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  await buildWasm();
  const steps = positiveInteger('steps', 10);
  const rounds = positiveInteger('rounds', 3);
  const profileSteps = positiveInteger('profile-steps', 5);
  const threads = positiveInteger('threads', 2);
  const configs: Config[] = [
    { name: '1 thread', options: { threads: 1 } },
    { name: `${threads} threads, product only`, options: { threads, threadedOps: ['matmul'] } },
    { name: `${threads} threads, all split`, options: { threads } },
  ];

  const dir = join(process.cwd(), 'public', 'data');
  const data = textDataFromSplits('sotu', readFileSync(join(dir, SOTU_TRAIN_FILE), 'utf8'), readFileSync(join(dir, SOTU_VAL_FILE), 'utf8'));
  const recipe = defaults.sotu;
  const loadBefore = loadavg();
  console.log(`GPT step on WasmCpuBackend: ${JSON.stringify(recipe.model)}, batch ${recipe.globalBatch}; load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')} (1, 5, 15 min) before`);

  interface Measured {
    config: Config;
    backend: WasmCpuBackend;
    run: ReturnType<typeof charLmRun>;
    stepMs: number[];
    profile: Profile | null;
    profiledMs: number;
  }
  const runs: Measured[] = [];
  for (const config of configs) {
    const backend = await WasmCpuBackend.create(undefined, config.options);
    if (backend.threads !== (config.options.threads ?? 1)) throw new Error(`${config.name}: the backend runs ${backend.threads} threads (${backend.info.adapter})`);
    const run = charLmRun(backend, data, recipe);
    for (let s = 0; s < 2; s++) await run.trainer.trainStep(); // warm-up: memory grown, code tiered up
    runs.push({ config, backend, run, stepMs: [], profile: null, profiledMs: 0 });
  }
  for (let round = 0; round < rounds; round++) {
    for (const r of runs) {
      for (let s = 0; s < steps; s++) {
        const t0 = performance.now();
        await r.run.trainer.trainStep();
        r.stepMs.push(performance.now() - t0);
      }
    }
  }
  for (const r of runs) {
    const timer = instrument(r.backend);
    const t0 = performance.now();
    for (let s = 0; s < profileSteps; s++) await r.run.trainer.trainStep();
    r.profiledMs = (performance.now() - t0) / profileSteps;
    timer.stop();
    r.profile = timer.profile;
    r.backend.close();
  }
  const loadAfter = loadavg();

  const ops = [...new Set(runs.flatMap((r) => [...(r.profile ?? new Map()).keys()]))];
  const perStep = (r: Measured, op: string) => (r.profile?.get(op)?.ms ?? 0) / profileSteps;
  const cpuPerStep = (r: Measured, op: string) => (r.profile?.get(op)?.cpuMs ?? 0) / profileSteps;
  ops.sort((a, b) => cpuPerStep(runs[0], b) - cpuPerStep(runs[0], a));
  const header = ['ms per step: wall / CPU', ...runs.map((r) => r.config.name)];
  const rows: string[][] = [];
  const cell = (wall: number, cpu: number) => `${wall.toFixed(2)} / ${cpu.toFixed(2)}`;
  for (const op of ops) {
    if (runs.every((r) => cpuPerStep(r, op) < 0.05 && perStep(r, op) < 0.05)) continue;
    rows.push([`${op} (${(runs[0].profile?.get(op)?.calls ?? 0) / profileSteps} calls)`, ...runs.map((r) => cell(perStep(r, op), cpuPerStep(r, op)))]);
  }
  const total = (r: Measured, of: (r: Measured, op: string) => number) => ops.reduce((s, op) => s + of(r, op), 0);
  rows.push(['sum of ops (profiled pass)', ...runs.map((r) => cell(total(r, perStep), total(r, cpuPerStep)))]);
  rows.push(['step, profiled pass (wall)', ...runs.map((r) => r.profiledMs.toFixed(2))]);
  rows.push([`step, median of ${steps * rounds} (wall, not profiled)`, ...runs.map((r) => median(r.stepMs).toFixed(2))]);
  rows.push([`step, best of ${steps * rounds}`, ...runs.map((r) => Math.min(...r.stepMs).toFixed(2))]);
  rows.push(['speed-up against the first (medians)', ...runs.map((r) => `${(median(runs[0].stepMs) / median(r.stepMs)).toFixed(2)}x`)]);
  rows.push(['speed-up against the first (bests)', ...runs.map((r) => `${(Math.min(...runs[0].stepMs) / Math.min(...r.stepMs)).toFixed(2)}x`)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(line(header));
  for (const row of rows) console.log(line(row));
  console.log(`load average ${loadAfter.map((l) => l.toFixed(2)).join(' ')} (1, 5, 15 min) after`);
  console.log(
    JSON.stringify({
      loadBefore: loadBefore[0],
      loadAfter: loadAfter[0],
      configs: runs.map((r) => ({
        name: r.config.name,
        stepMs: median(r.stepMs),
        bestStepMs: Math.min(...r.stepMs),
        profileWallMs: Object.fromEntries(ops.map((op) => [op, Number(perStep(r, op).toFixed(3))])),
        profileCpuMs: Object.fromEntries(ops.map((op) => [op, Number(cpuPerStep(r, op).toFixed(3))])),
      })),
    }),
  );
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});

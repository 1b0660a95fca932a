// `npm run bench:cpu`: this project's fast CPU backend (WebAssembly SIMD) against TensorFlow.js's WASM
// backend (XNNPACK, SIMD and threads) and its JavaScript CPU backend, measured in the same headless
// Chromium page, plus numpy's matmul on the same cores as the native reference when python3 has numpy.
// The page is served cross-origin isolated (COOP/COEP headers on this benchmark's own Vite server) so
// that TensorFlow.js may start its WASM threads. Prints a table, then a last line of JSON.
// `--quick` runs the smallest size only.
import { spawnSync } from 'node:child_process';
import { viewOf } from '../src/engine/backend';
import { WasmCpuBackend } from '../src/engine/wasm-backend';
import type { CpuBenchResult } from './cpu-page';
import { runBenchMain, runBenchPage } from './page-runner';

/** numpy's float32 matmul GFLOP/s per size, or the reason there is none. */
function numpyReference(sizes: number[]): { gflops: Record<number, number>; blas: string } | { missing: string } {
  const script = [
    'import json, time, numpy as np',
    'out = {}',
    `for n in ${JSON.stringify(sizes)}:`,
    '    a = np.random.rand(n, n).astype(np.float32); b = np.random.rand(n, n).astype(np.float32)',
    '    a @ b',
    '    best = min((lambda t: (a @ b, time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(5))',
    '    out[n] = 2 * n ** 3 / best / 1e9',
    'cfg = np.__config__.CONFIG if hasattr(np.__config__, "CONFIG") else {}',
    'blas = cfg.get("Build Dependencies", {}).get("blas", {}).get("name", "unknown")',
    'print(json.dumps({"gflops": out, "blas": f"numpy {np.__version__}, {blas}"}))',
  ].join('\n');
  // The machine may set OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for old OpenBLAS builds; they slow a
  // current numpy, so this one measurement runs without both.
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const run = spawnSync('python3', ['-c', script], { env, encoding: 'utf8', timeout: 120_000 });
  if (run.error) return { missing: `python3 not runnable (${run.error.message})` };
  if (run.status !== 0) return { missing: /No module named/.test(run.stderr) ? 'numpy is not installed' : run.stderr.trim().split('\n').pop() ?? 'failed' };
  return JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}');
}

const gflops = (flops: number, ms: number) => flops / ms / 1e6;

/**
 * Our matmul in Node on the same kernels, timed by this process's CPU time rather than the wall clock:
 * on a machine shared with other work the wall clock counts the time the thread waited for a core, CPU
 * time does not, so this is the figure the kernel reaches when it has a core to itself (minus cache
 * sharing). Median over iterations.
 */
async function oursPerCpuSecond(n: number, iterations: number): Promise<number> {
  const ours = await WasmCpuBackend.create(undefined, { threads: 1 });
  const [a, b, c] = ['a', 'b', 'c'].map((name) => viewOf(ours.alloc(n * n, name, 'workspace')));
  ours.write(a, Float32Array.from({ length: n * n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5));
  ours.write(b, Float32Array.from({ length: n * n }, (_, i) => ((i * 104729) % 1000) / 1000 - 0.5));
  ours.matmul(c, a, b, n, n, n);
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const start = process.cpuUsage();
    ours.matmul(c, a, b, n, n, n);
    const used = process.cpuUsage(start);
    samples.push((used.user + used.system) / 1000);
  }
  return gflops(2 * n * n * n, [...samples].sort((x, y) => x - y)[Math.floor(iterations / 2)]);
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  await runBenchPage<CpuBenchResult>('cpu.html', 'cpuBenchResult', quick, async (result) => {
    const native = numpyReference(result.rows.flatMap((row) => (/^matmul (\d+)x/.exec(row.name) ? [Number(RegExp.$1)] : [])));
    const load = (await import('node:os')).loadavg()[0];
    console.log(`ours: ${result.ours}`);
    console.log(`TensorFlow.js WASM: ${result.tfjsWasm}; page cross-origin isolated: ${result.crossOriginIsolated}; cores: ${result.hardwareConcurrency}`);
    console.log(`load average while measured: ${load.toFixed(1)} (figures on a shared machine are lower bounds)`);
    console.log('page figures: best run of each; ours and TensorFlow.js WASM alternate run by run, so both see the same load');
    console.log(
      ['benchmark'.padEnd(46), 'ours ms', 'GFLOP/s', 'wasm ms', 'GFLOP/s', 'cpu ms', 'GFLOP/s', 'vs wasm', 'vs cpu', 'numpy GFLOP/s']
        .map((s, i) => (i === 0 ? s : s.padStart(i === 9 ? 14 : 9)))
        .join(' '),
    );
    const table = result.rows.map((row) => {
      const size = /^matmul (\d+)x/.exec(row.name)?.[1];
      const numpy = 'gflops' in native && size ? native.gflops[Number(size)] : null;
      const cells = {
        name: row.name,
        oursMs: row.oursMs,
        oursGflops: gflops(row.flops, row.oursMs),
        tfjsWasmMs: row.tfjsWasmMs,
        tfjsWasmGflops: gflops(row.flops, row.tfjsWasmMs),
        tfjsCpuMs: row.tfjsCpuMs,
        tfjsCpuGflops: row.tfjsCpuMs === null ? null : gflops(row.flops, row.tfjsCpuMs),
        /** Above 1: ours is faster. */
        vsTfjsWasm: row.tfjsWasmMs / row.oursMs,
        vsTfjsCpu: row.tfjsCpuMs === null ? null : row.tfjsCpuMs / row.oursMs,
        numpyGflops: numpy ?? null,
      };
      const fmt = (x: number | null, digits = 2) => (x === null ? '-' : x.toFixed(digits)).padStart(9);
      console.log(
        [
          cells.name.padEnd(46), fmt(cells.oursMs, 1), fmt(cells.oursGflops), fmt(cells.tfjsWasmMs, 1), fmt(cells.tfjsWasmGflops),
          fmt(cells.tfjsCpuMs, 1), fmt(cells.tfjsCpuGflops), `${fmt(cells.vsTfjsWasm)}x`.slice(1), `${fmt(cells.vsTfjsCpu)}x`.slice(1),
          (cells.numpyGflops === null ? '-' : cells.numpyGflops.toFixed(1)).padStart(14),
        ].join(' '),
      );
      return cells;
    });
    for (const n of quick ? [256] : [256, 512, 1024]) {
      console.log(`ours per CPU-second (Node, same kernels, one thread): matmul ${n}^3 ${(await oursPerCpuSecond(n, n >= 1024 ? 5 : 15)).toFixed(2)} GFLOP/s`);
    }
    console.log('numpy' in native || 'blas' in native ? `native reference: ${(native as { blas: string }).blas}` : `native reference skipped: ${(native as { missing: string }).missing}`);
    console.log(JSON.stringify({ ok: true, ours: result.ours, tfjsWasm: result.tfjsWasm, loadAverage: load, native: 'blas' in native ? native.blas : null, rows: table }));
  });
}

runBenchMain('bench:cpu', main);

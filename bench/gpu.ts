// `npm run bench:gpu`: this project's WGSL kernels against TensorFlow.js's WebGPU, WebGL and WASM
// backends, measured in the same headless Chromium page on whatever adapter it finds (SwiftShader when
// there is no GPU), and against the fastest of them per benchmark. The page is cross-origin isolated so
// that the WASM backend runs its threads. Prints a table, then a last line of JSON. `--quick` runs the
// smallest sizes only.
import { loadavg } from 'node:os';
import type { BenchResult } from './gpu-page';
import { runBenchMain, runBenchPage } from './page-runner';
import { TFJS_BACKENDS } from './tfjs-backends';

async function main(): Promise<void> {
  await runBenchPage<BenchResult>('gpu.html', 'benchResult', process.argv.includes('--quick'), async (result) => {
    console.log(`adapter: ${result.adapter} (matmul variant: ${result.matmulVariant})`);
    for (const [backend, why] of Object.entries(result.tfjsMissing)) console.log(`TensorFlow.js ${backend}: ${why}`);
    console.log(`load average: ${loadavg()[0].toFixed(1)} (on a shared machine every figure is a lower bound)`);
    const tfjsHeads = TFJS_BACKENDS.map((backend) => `${backend} ms`.padStart(10));
    console.log(['benchmark'.padEnd(52), 'ours ms'.padStart(10), ...tfjsHeads, 'fastest'.padStart(8), 'vs fastest'.padStart(11)].join(' '));
    for (const row of result.rows) {
      const tfjs = TFJS_BACKENDS.map((backend) => (row.tfjsMs[backend]?.toFixed(2) ?? '-').padStart(10));
      console.log([row.name.padEnd(52), row.oursMs.toFixed(2).padStart(10), ...tfjs, row.fastest.padStart(8), `${row.speedup.toFixed(2)}x`.padStart(11)].join(' '));
    }
    console.log(JSON.stringify({ ok: true, ...result }));
  });
}

runBenchMain('bench:gpu', main);

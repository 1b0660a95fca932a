// `npm run bench:gpu`: this project's WGSL kernels against TensorFlow.js's WebGPU, WebGL and WASM
// backends, measured in the same headless Chromium page on whatever adapter it finds (SwiftShader when
// there is no GPU): per benchmark against the fastest of TensorFlow.js's two adapter backends (WebGPU,
// WebGL; the goal is >= 1.0x), and separately against its WASM backend, which runs on the CPU and is
// printed as the CPU reference only. The page is cross-origin isolated so
// that the WASM backend runs its threads. Prints a table, then a last line of JSON. `--quick` runs the
// smallest sizes only.
import { loadavg } from 'node:os';
import type { BenchResult } from './gpu-page';
import { runBenchMain, runBenchPage } from './page-runner';
import { ADAPTER_BACKENDS, CPU_REFERENCE_BACKEND, TFJS_BACKENDS } from './tfjs-backends';

async function main(): Promise<void> {
  await runBenchPage<BenchResult>('gpu.html', 'benchResult', process.argv.includes('--quick'), async (result) => {
    console.log(`adapter: ${result.adapter} (matmul variant: ${result.matmulVariant})`);
    for (const [backend, why] of Object.entries(result.tfjsMissing)) console.log(`TensorFlow.js ${backend}: ${why}`);
    console.log(`load average: ${loadavg()[0].toFixed(1)} (on a shared machine every figure is a lower bound)`);
    const tfjsHeads = TFJS_BACKENDS.map((backend) => `${backend} ms`.padStart(10));
    console.log(`'vs adapter': ours against the faster of TensorFlow.js ${ADAPTER_BACKENDS.join('/')} (same adapter; above 1.00x ours is faster); 'vs ${CPU_REFERENCE_BACKEND} (CPU)': against TensorFlow.js ${CPU_REFERENCE_BACKEND}, the CPU reference`);
    console.log(['benchmark'.padEnd(52), 'ours ms'.padStart(10), 'GFLOP/s'.padStart(8), ...tfjsHeads, 'fastest'.padStart(8), 'vs adapter'.padStart(11), `vs ${CPU_REFERENCE_BACKEND} (CPU)`.padStart(15)].join(' '));
    for (const row of result.rows) {
      const tfjs = TFJS_BACKENDS.map((backend) => (row.tfjsMs[backend]?.toFixed(2) ?? '-').padStart(10));
      const gflops = row.flops === null ? '-' : (row.flops / row.oursMs / 1e6).toFixed(2);
      const vsCpu = row.vsCpuReference === null ? '-' : `${row.vsCpuReference.toFixed(2)}x`;
      console.log([row.name.padEnd(52), row.oursMs.toFixed(2).padStart(10), gflops.padStart(8), ...tfjs, row.fastest.padStart(8), `${row.speedup.toFixed(2)}x`.padStart(11), vsCpu.padStart(15)].join(' '));
    }
    for (const row of result.rows) {
      const flops = row.flops;
      if (row.oursBlocks4Ms === undefined || flops === null) continue;
      const gflops = (ms: number) => (flops / ms / 1e6).toFixed(2);
      console.log(`${row.name}: ours with 4x4 blocks ${row.oursBlocks4Ms.toFixed(2)} ms (${gflops(row.oursBlocks4Ms)} GFLOP/s), with 8x8 ${row.oursMs.toFixed(2)} ms (${gflops(row.oursMs)} GFLOP/s), timed in turns`);
    }
    console.log(JSON.stringify({ ok: true, ...result }));
  });
}

runBenchMain('bench:gpu', main);

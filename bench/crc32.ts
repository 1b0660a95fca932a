// CRC-32 speed: slicing-by-8 (what frames use) against the bytewise loop, in MB/s (1e6 B/s), on a
// frame-sized buffer (npx tsx bench/crc32.ts). Node's V8 here; the browser's V8 is the same engine.
import { crc32, crc32Bytewise } from '../src/shared/crc32';

const bytes = new Uint8Array(262_104).map((_, i) => (i * 7919) & 0xff);

function mbPerSec(fn: (b: Uint8Array) => number, reps: number): number {
  let sink = 0;
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) sink ^= fn(bytes);
  const ms = performance.now() - t0;
  if (sink === 0.5) console.log(sink); // keeps the loop from being optimised away
  return (reps * bytes.length) / 1e6 / (ms / 1000);
}

for (const fn of [crc32Bytewise, crc32]) mbPerSec(fn, 20); // warm-up: let V8 optimise both
const rows = [1, 2, 3].map(() => ({ bytewise: mbPerSec(crc32Bytewise, 80), slicing8: mbPerSec(crc32, 80) }));
const best = { bytewise: Math.max(...rows.map((r) => r.bytewise)), slicing8: Math.max(...rows.map((r) => r.slicing8)) };
console.log(`crc32 on ${bytes.length} bytes: bytewise ${best.bytewise.toFixed(0)} MB/s, slicing-by-8 ${best.slicing8.toFixed(0)} MB/s (${(best.slicing8 / best.bytewise).toFixed(2)}x)`);
console.log(JSON.stringify({ bench: 'crc32', unit: 'MB/s', ...best, ratio: best.slicing8 / best.bytewise }));

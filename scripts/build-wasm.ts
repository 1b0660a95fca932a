// Builds the fast CPU backend's WebAssembly kernels: wasm/kernels.ts (AssemblyScript) ->
// src/engine/generated/kernels.wasm (its own memory, one thread) and kernels-threads.wasm (the same code
// on an imported shared memory, which a pool of Workers instantiates too: src/engine/kernel-threads.ts),
// with AssemblyScript's compiler from npm. Run by `npm run build:wasm`
// and by `prepare-data` (so `npm start`, `npm test` and every tool get it first). Idempotent: a stamp
// beside the output holds a hash of the sources, the compiler's version and its flags; when it matches,
// nothing is compiled. The build is deterministic (same inputs, same bytes; build-wasm.test.ts checks).
import asc from 'assemblyscript/asc';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SHARED_MAXIMUM_PAGES } from '../src/engine/wasm-kernels';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const sourceDir = join(root, 'wasm');
export const KERNELS_SOURCE = join(sourceDir, 'kernels.ts');
export const KERNELS_OUTPUT = join(root, 'src', 'engine', 'generated', 'kernels.wasm');
export const THREADED_KERNELS_OUTPUT = join(root, 'src', 'engine', 'generated', 'kernels-threads.wasm');
const stampPath = `${KERNELS_OUTPUT}.stamp`;

// Stub runtime: the kernels never allocate. SIMD on: the loader feature-detects it before instantiating.
const FLAGS = ['--optimizeLevel', '3', '--shrinkLevel', '0', '--runtime', 'stub', '--noAssert', '--enable', 'simd'];
// The threaded build imports its memory (env.memory), shared, so every thread's instance sees one heap.
const THREADED_FLAGS = [...FLAGS, '--enable', 'threads', '--importMemory', '--sharedMemory', '--initialMemory', '1', '--maximumMemory', String(SHARED_MAXIMUM_PAGES)];

export type KernelVariant = 'single' | 'threads';
const VARIANTS: Record<KernelVariant, { flags: string[]; output: string }> = {
  single: { flags: FLAGS, output: KERNELS_OUTPUT },
  threads: { flags: THREADED_FLAGS, output: THREADED_KERNELS_OUTPUT },
};

function stamp(): string {
  const hash = createHash('sha256');
  hash.update(`${asc.version}\n${FLAGS.join(' ')}\n${THREADED_FLAGS.join(' ')}\n`);
  for (const name of readdirSync(sourceDir).filter((f) => f.endsWith('.ts')).sort()) {
    hash.update(`${name}\n`).update(readFileSync(join(sourceDir, name)));
  }
  return hash.digest('hex');
}

/** Compiles wasm/kernels.ts in one variant and returns the module's bytes (nothing written). */
export async function compileKernels(variant: KernelVariant = 'single'): Promise<Uint8Array> {
  let binary: Uint8Array | null = null;
  const stderr: string[] = [];
  const result = await asc.main([KERNELS_SOURCE, '--outFile', 'kernels.wasm', ...VARIANTS[variant].flags], {
    writeFile: (name, contents) => {
      if (name === 'kernels.wasm' && typeof contents !== 'string') binary = contents;
    },
    stderr: { write: (text: string | Uint8Array) => void stderr.push(String(text)) } as never,
  });
  if (result.error || !binary) throw new Error(`AssemblyScript build of ${KERNELS_SOURCE} failed: ${result.error?.message ?? 'no output'}\n${stderr.join('')}`);
  return binary;
}

export async function buildWasm(): Promise<'built' | 'up to date'> {
  const want = stamp();
  const outputs = Object.values(VARIANTS).map((v) => v.output);
  if (outputs.every((o) => existsSync(o)) && existsSync(stampPath) && readFileSync(stampPath, 'utf8') === want) return 'up to date';
  mkdirSync(dirname(KERNELS_OUTPUT), { recursive: true });
  for (const variant of Object.keys(VARIANTS) as KernelVariant[]) {
    const bytes = await compileKernels(variant);
    // Written aside and renamed, so that a reader (a test process building at the same time) never
    // sees half a module; the stamp goes last, so a crash in between only means a rebuild next time.
    const output = VARIANTS[variant].output;
    const temporary = `${output}.${process.pid}.tmp`;
    writeFileSync(temporary, bytes);
    renameSync(temporary, output);
  }
  writeFileSync(stampPath, want);
  return 'built';
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  buildWasm()
    .then((what) => console.log(`wasm kernels: ${what} (${KERNELS_OUTPUT})`))
    .catch((error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exit(1);
    });
}

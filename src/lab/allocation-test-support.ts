// Test-only (imported by tests alone): records every allocation of at least a threshold of floats, on
// the host (Float32Array constructions, by a stand-in for the global) and on a CPU backend (device
// buffers and device reads), so that a test can assert that stage 3 never holds the whole parameter
// vector. Call vi.unstubAllGlobals() before the test itself allocates large arrays. ALLOC_STACK=1 in the
// environment adds each allocation's stack to its record (to find where one comes from).
import { vi } from 'vitest';
import type { CpuBackend } from '../engine/cpu-backend';

/** Records every allocation of at least `threshold` floats: host Float32Arrays, device buffers, device reads. */
export class LargeAllocations {
  readonly seen: string[] = [];
  threshold = Infinity;
  note(floats: number, what: string): void {
    if (floats >= this.threshold) this.seen.push(`${what} of ${floats} floats` + (process.env.ALLOC_STACK ? new Error().stack : ""));
  }
}

export function watchHostArrays(watch: LargeAllocations): void {
  const Native = Float32Array;
  class Watched extends Native {
    constructor(...args: unknown[]) {
      const first = args[0];
      if (typeof first === 'number') watch.note(first, 'host Float32Array');
      else if (first instanceof ArrayBuffer) watch.note((first.byteLength - ((args[1] as number) ?? 0)) / 4, 'host Float32Array over a buffer');
      else if (first && typeof (first as ArrayLike<number>).length === 'number') watch.note((first as ArrayLike<number>).length, 'host Float32Array copy');
      super(...(args as []));
    }
    static override [Symbol.hasInstance](value: unknown): boolean {
      return value instanceof Native;
    }
  }
  vi.stubGlobal('Float32Array', Watched);
}

export function watchBackend(backend: CpuBackend, watch: LargeAllocations, rank: number): void {
  const alloc = backend.alloc.bind(backend);
  backend.alloc = (length, label, kind, dtype) => {
    watch.note(length, `rank ${rank}: device buffer ${label}`);
    return alloc(length, label, kind, dtype);
  };
  const read = backend.read.bind(backend);
  backend.read = (view) => {
    watch.note(view.length, `rank ${rank}: device read`);
    return read(view);
  };
  const readMany = backend.readMany.bind(backend);
  backend.readMany = (views) => {
    for (const view of views) watch.note(view.length, `rank ${rank}: device read`);
    return readMany(views);
  };
}

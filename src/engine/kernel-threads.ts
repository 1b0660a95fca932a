// A pool of helper threads (Web Workers in a browser, worker_threads under Node) that run the fast CPU
// backend's WebAssembly kernels on one shared linear memory (the threaded build of wasm/kernels.ts,
// src/engine/generated/kernels-threads.wasm), so that one op's work is shared between the calling
// thread and the helpers. Guarantees:
// - `parallelFor` is synchronous for the caller: it returns only when every chunk of the range has run
//   (so the op's output is complete in shared memory), or throws when a kernel failed in a helper or a
//   helper that took a chunk stopped answering.
// - Chunks go to whichever thread is free (a shared counter), so a helper the OS has descheduled (a
//   busy machine) delays the job by at most the chunk it holds; the caller never waits for a helper
//   that has not started.
// - A chunk is claimed by compare-and-swap on a counter tagged with the job's generation, so a helper
//   that wakes late for a finished job can never run a chunk of the next one with the old arguments.
// - The caller never blocks in `Atomics.wait` where that is forbidden (a page's main thread): it spins
//   there, and waits where it may (Node's main thread, a worker).
// - Helpers are started and instantiated before `start` resolves; a pool that cannot start rejects, and
//   the caller falls back to one thread (wasm-kernels.ts).
// The control block is a separate SharedArrayBuffer of Int32 (layout below); kernel arguments are byte
// addresses and sizes, which fit int32 in a memory of at most 2 GiB.

const GENERATION = 0; // bumped once per job; helpers wait on it
const DONE = 1; // chunks of this job that have finished
const FAILED = 2; // 1 when a helper's kernel threw
const OP = 3; // index into the op names given at start; -1 stops the helpers
const NEXT = 4; // (generation & TAG_MASK) << 16 | next chunk to claim
const CHUNKS = 5; // chunks in this job
const END = 6; // the range [0, END) is cut into chunks of STEP
const STEP = 7;
const AT = 8; // args[AT] = chunk start, args[AT + 1] = chunk end
const ARGS_AT = 12;
/** The most int32 arguments a kernel takes. */
export const MAX_ARGS = 12;
/** A job holds at most this many chunks (the counter's low 16 bits). */
export const MAX_CHUNKS = 0xffff;
const TAG_MASK = 0x7fff;
const STOP = -1;

// The helper's whole program, plain JavaScript so that it runs as a Blob-URL Worker in a page and as an
// eval'd worker_threads Worker under Node without a bundler step. It instantiates the module on the
// shared memory, says "ready", then loops: wait for a new generation, claim chunks of the job while the
// counter carries that generation's tag, run each, count it done.
const HELPER_SOURCE = `
const start = (data, post) => {
  const ctl = new Int32Array(data.control);
  WebAssembly.instantiate(data.module, { env: { memory: data.memory, abort: () => { throw new Error('WASM kernel aborted'); } } }).then(
    (instance) => {
      const ops = data.ops.map((name) => instance.exports[name]);
      post({ ready: true });
      let seen = 0;
      for (;;) {
        Atomics.wait(ctl, ${GENERATION}, seen);
        seen = Atomics.load(ctl, ${GENERATION});
        const op = Atomics.load(ctl, ${OP});
        if (op === ${STOP}) return;
        const tag = (seen & ${TAG_MASK}) << 16;
        const chunks = Atomics.load(ctl, ${CHUNKS});
        const end = Atomics.load(ctl, ${END});
        const step = Atomics.load(ctl, ${STEP});
        const at = Atomics.load(ctl, ${AT});
        const args = Array.from(ctl.subarray(${ARGS_AT}, ${ARGS_AT + MAX_ARGS}));
        for (;;) {
          const next = Atomics.load(ctl, ${NEXT});
          if ((next & ~0xffff) !== tag || (next & 0xffff) >= chunks) break;
          if (Atomics.compareExchange(ctl, ${NEXT}, next, next + 1) !== next) continue;
          const from = (next & 0xffff) * step;
          args[at] = from;
          args[at + 1] = Math.min(from + step, end);
          try {
            ops[op](...args);
          } catch (error) {
            Atomics.store(ctl, ${FAILED}, 1);
          }
          Atomics.add(ctl, ${DONE}, 1);
          Atomics.notify(ctl, ${DONE});
        }
      }
    },
    (error) => post({ error: String(error) }),
  );
};
if (typeof require === 'function') {
  const { parentPort, workerData } = require('node:worker_threads');
  start(workerData, (message) => parentPort.postMessage(message));
} else {
  self.onmessage = (event) => start(event.data, (message) => self.postMessage(message));
}
`;

interface HelperInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  index: number;
  ops: readonly string[];
}

interface Helper {
  /** Resolves once the helper's instance is ready; rejects with its error. */
  ready: Promise<void>;
  terminate(): void;
}

function onceReady(subscribe: (listener: (message: { ready?: boolean; error?: string }) => void) => void, onError: (listener: (error: unknown) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    subscribe((message) => (message.ready ? resolve() : reject(new Error(`kernel thread: ${message.error ?? 'no answer'}`))));
    onError((error) => reject(error instanceof Error ? error : new Error(`kernel thread: ${String(error)}`)));
  });
}

async function spawnHelper(init: HelperInit): Promise<Helper> {
  if (typeof Worker === 'function' && typeof Blob === 'function') {
    const url = URL.createObjectURL(new Blob([HELPER_SOURCE], { type: 'text/javascript' }));
    const worker = new Worker(url);
    URL.revokeObjectURL(url);
    const ready = onceReady(
      (listener) => worker.addEventListener('message', (event: MessageEvent) => listener(event.data as { ready?: boolean; error?: string })),
      (listener) => worker.addEventListener('error', (event: ErrorEvent) => listener(new Error(`kernel thread: ${event.message}`))),
    );
    worker.postMessage(init);
    return { ready, terminate: () => worker.terminate() };
  }
  const name = 'node:worker_threads';
  const { Worker: NodeWorker } = (await import(/* @vite-ignore */ name)) as typeof import('node:worker_threads');
  const worker = new NodeWorker(HELPER_SOURCE, { eval: true, workerData: init });
  // A helper blocked in Atomics.wait must not keep Node alive once the caller is done.
  worker.unref();
  const ready = onceReady(
    (listener) => worker.on('message', listener),
    (listener) => worker.on('error', listener),
  );
  return { ready, terminate: () => void worker.terminate() };
}

/** Whether this thread may block in Atomics.wait (a page's main thread may not). */
function canBlock(): boolean {
  const g = globalThis as { window?: unknown; document?: unknown };
  return g.window === undefined && g.document === undefined;
}

/** The calling thread gives up on its helpers after this long in one `join` (a stuck or killed helper). */
const JOIN_TIMEOUT_MS = 30_000;

export class KernelThreadPool {
  private readonly ctl: Int32Array;
  private closed = false;
  private readonly blocking = canBlock();

  private constructor(
    private readonly helpers: Helper[],
    control: SharedArrayBuffer,
    private readonly ops: readonly string[],
  ) {
    this.ctl = new Int32Array(control);
  }

  /**
   * Starts `helpers` threads, each with its own instance of `module` on `memory` (shared), able to run
   * the exports named in `ops`. Rejects (and stops any started) when one cannot start within `timeoutMs`.
   */
  static async start(module: WebAssembly.Module, memory: WebAssembly.Memory, helpers: number, ops: readonly string[], timeoutMs = 20_000): Promise<KernelThreadPool> {
    if (!Number.isInteger(helpers) || helpers < 1) throw new RangeError(`kernel threads: need at least 1 helper, got ${helpers}`);
    if (!(memory.buffer instanceof SharedArrayBuffer)) throw new Error('kernel threads: the memory is not shared');
    const control = new SharedArrayBuffer((ARGS_AT + MAX_ARGS) * 4);
    const started: Helper[] = [];
    try {
      for (let index = 0; index < helpers; index++) started.push(await spawnHelper({ module, memory, control, index, ops }));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`kernel threads: not ready after ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        await Promise.race([Promise.all(started.map((h) => h.ready)), timeout]);
      } finally {
        clearTimeout(timer);
      }
    } catch (error) {
      for (const helper of started) helper.terminate();
      throw error;
    }
    return new KernelThreadPool(started, control, ops);
  }

  /** Helper threads (the caller's own thread not counted). */
  get size(): number {
    return this.helpers.length;
  }

  /**
   * Runs export `op` over [0, end) in chunks of `step`: each chunk calls it with `args`, where
   * args[at] and args[at + 1] are set to the chunk's [from, to). The helpers and, unless `here` is null,
   * the caller (through `here(from, to)`) take chunks until none is left; returns when all have run.
   */
  parallelFor(op: string, args: readonly number[], at: number, end: number, step: number, here: ((from: number, to: number) => void) | null): void {
    if (this.closed) throw new Error('kernel threads: the pool is closed');
    const index = this.ops.indexOf(op);
    if (index < 0) throw new Error(`kernel threads: unknown op ${op}`);
    if (args.length > MAX_ARGS || at < 0 || at + 1 >= Math.max(args.length, 2)) throw new RangeError(`kernel threads: ${op} given ${args.length} arguments with the range at ${at} (at most ${MAX_ARGS})`);
    if (!(Number.isInteger(step) && step > 0 && Number.isInteger(end) && end >= 0)) throw new RangeError(`kernel threads: bad range [0, ${end}) in steps of ${step}`);
    const chunks = Math.ceil(end / step);
    if (chunks > MAX_CHUNKS) throw new RangeError(`kernel threads: ${chunks} chunks, at most ${MAX_CHUNKS}`);
    if (chunks === 0) return;
    const ctl = this.ctl;
    ctl.fill(0, ARGS_AT);
    ctl.set(args, ARGS_AT);
    Atomics.store(ctl, OP, index);
    Atomics.store(ctl, CHUNKS, chunks);
    Atomics.store(ctl, END, end);
    Atomics.store(ctl, STEP, step);
    Atomics.store(ctl, AT, at);
    Atomics.store(ctl, DONE, 0);
    Atomics.store(ctl, FAILED, 0);
    const generation = (Atomics.load(ctl, GENERATION) + 1) | 0;
    const tag = (generation & TAG_MASK) << 16;
    Atomics.store(ctl, NEXT, tag);
    Atomics.store(ctl, GENERATION, generation);
    Atomics.notify(ctl, GENERATION);
    // The caller's failure is thrown only after every chunk has run: helpers must never still be busy
    // with this job when the next one is written.
    let failure: unknown = null;
    if (here) {
      for (;;) {
        const next = Atomics.load(ctl, NEXT);
        if ((next & 0xffff) >= chunks) break;
        if (Atomics.compareExchange(ctl, NEXT, next, next + 1) !== next) continue;
        const from = (next & 0xffff) * step;
        try {
          here(from, Math.min(from + step, end));
        } catch (error) {
          failure ??= error;
        }
        Atomics.add(ctl, DONE, 1);
      }
    }
    this.join(chunks);
    if (failure !== null) throw failure;
  }

  /** Returns once `chunks` chunks are done; throws if a helper's kernel failed or one stopped answering. */
  private join(chunks: number): void {
    const ctl = this.ctl;
    const deadline = performance.now() + JOIN_TIMEOUT_MS;
    let spins = 0;
    for (let done = Atomics.load(ctl, DONE); done < chunks; done = Atomics.load(ctl, DONE)) {
      if (this.blocking) Atomics.wait(ctl, DONE, done, 50);
      else if ((++spins & 0x3ff) !== 0) continue;
      if (performance.now() > deadline) {
        this.close();
        throw new Error(`kernel threads: ${chunks - done} of ${chunks} chunks did not finish in ${JOIN_TIMEOUT_MS} ms`);
      }
    }
    if (Atomics.load(ctl, FAILED) !== 0) throw new Error('kernel threads: a kernel failed in a helper thread');
  }

  /** Stops and terminates the helpers; the pool cannot be used again. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctl, OP, STOP);
    Atomics.add(this.ctl, GENERATION, 1);
    Atomics.notify(this.ctl, GENERATION);
    for (const helper of this.helpers) helper.terminate();
  }
}

// A pool of helper threads (Web Workers in a browser, worker_threads under Node) that run the fast CPU
// backend's WebAssembly kernels on one shared linear memory (the threaded build of wasm/kernels.ts,
// src/engine/generated/kernels-threads.wasm), so that one op's work can be split between the calling
// thread and the helpers. Guarantees:
// - A job is synchronous for the caller: `dispatch` hands each helper its arguments and returns at once,
//   the caller runs its own part, and `join` returns only when every helper has finished (so the op's
//   output is complete and in shared memory), or throws when one failed or stopped answering.
// - The caller never blocks in `Atomics.wait` where that is forbidden (a page's main thread): it spins
//   on the shared counter there, and waits where it may (Node's main thread, a worker).
// - Helpers are started and instantiated before `start` resolves; a pool that cannot start rejects, and
//   the caller falls back to one thread (wasm-kernels.ts).
// The control block is a separate SharedArrayBuffer of Int32: [GENERATION, DONE, FAILED, OP, ACTIVE],
// then ARGS_PER_THREAD int32 arguments per helper (kernel arguments are byte addresses and sizes, which
// fit int32 in a memory of at most 2 GiB).

const GENERATION = 0; // bumped once per job; helpers wait on it
const DONE = 1; // helpers of this job that have finished
const FAILED = 2; // 1 when a helper's kernel threw
const OP = 3; // index into the op names given at start; -1 stops the helpers
const ACTIVE = 4; // helpers 0..ACTIVE-1 take part in this job
const ARGS_AT = 8;
/** The most int32 arguments a kernel takes (attentionBackward has 9). */
export const ARGS_PER_THREAD = 10;
const STOP = -1;

// The helper's whole program, plain JavaScript so that it runs as a Blob-URL Worker in a page and as an
// eval'd worker_threads Worker under Node without a bundler step. It instantiates the module on the
// shared memory, says "ready", then loops: wait for a new generation, run its op, count itself done.
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
        if (data.index >= Atomics.load(ctl, ${ACTIVE})) continue;
        const at = ${ARGS_AT} + data.index * ${ARGS_PER_THREAD};
        try {
          ops[op](...Array.from(ctl.subarray(at, at + ${ARGS_PER_THREAD})));
        } catch (error) {
          Atomics.store(ctl, ${FAILED}, 1);
        }
        Atomics.add(ctl, ${DONE}, 1);
        Atomics.notify(ctl, ${DONE});
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
  private active = 0;
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
    const control = new SharedArrayBuffer((ARGS_AT + helpers * ARGS_PER_THREAD) * 4);
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
   * Starts export `op` on helpers 0..args.length-1, helper i with args[i] (at most ARGS_PER_THREAD
   * int32 each). Returns at once; `join` waits for them. One job at a time.
   */
  dispatch(op: string, args: readonly (readonly number[])[]): void {
    if (this.closed) throw new Error('kernel threads: the pool is closed');
    if (this.active > 0) throw new Error('kernel threads: a job is still running (join it first)');
    const index = this.ops.indexOf(op);
    if (index < 0) throw new Error(`kernel threads: unknown op ${op}`);
    if (args.length > this.helpers.length) throw new RangeError(`kernel threads: ${args.length} parts for ${this.helpers.length} helpers`);
    if (args.length === 0) return;
    const ctl = this.ctl;
    args.forEach((list, helper) => {
      if (list.length > ARGS_PER_THREAD) throw new RangeError(`kernel threads: ${op} given ${list.length} arguments, at most ${ARGS_PER_THREAD}`);
      ctl.set(list, ARGS_AT + helper * ARGS_PER_THREAD);
    });
    Atomics.store(ctl, OP, index);
    Atomics.store(ctl, ACTIVE, args.length);
    Atomics.store(ctl, DONE, 0);
    Atomics.store(ctl, FAILED, 0);
    this.active = args.length;
    Atomics.add(ctl, GENERATION, 1);
    Atomics.notify(ctl, GENERATION);
  }

  /** Returns once every helper of the last job has finished; throws if one failed or none answered. */
  join(): void {
    const want = this.active;
    if (want === 0) return;
    const ctl = this.ctl;
    const deadline = performance.now() + JOIN_TIMEOUT_MS;
    let spins = 0;
    for (let done = Atomics.load(ctl, DONE); done < want; done = Atomics.load(ctl, DONE)) {
      if (this.blocking) Atomics.wait(ctl, DONE, done, 50);
      else if ((++spins & 0x3ff) !== 0) continue;
      if (performance.now() > deadline) {
        this.close();
        throw new Error(`kernel threads: ${want - done} of ${want} helpers did not finish in ${JOIN_TIMEOUT_MS} ms`);
      }
    }
    this.active = 0;
    if (Atomics.load(ctl, FAILED) !== 0) throw new Error('kernel threads: a kernel failed in a helper thread');
  }

  /** Stops and terminates the helpers; the pool cannot be used again. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.active = 0;
    Atomics.store(this.ctl, OP, STOP);
    Atomics.add(this.ctl, GENERATION, 1);
    Atomics.notify(this.ctl, GENERATION);
    for (const helper of this.helpers) helper.terminate();
  }
}

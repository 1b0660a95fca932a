// Asynchronous parameter server with bounded staleness (stale-synchronous parallel, SSP). Rank `server`
// is both the server and a worker. Every worker pushes the gradient of each step to the server and goes
// on with the parameters the server sends back; the server applies each gradient as it arrives (no
// waiting for the others) and releases a worker for its next step only while that worker is at most
// `staleness` steps ahead of the slowest one (collective/ps.ts: mayProceed). A gradient is applied only
// if the server has not moved more than `staleness` rounds past the parameters it was computed on
// (acceptGradient; under SSP that always holds, so it guards against a faulty peer rather than
// throttling a slow one).
//
// What differs from the synchronous round, on purpose:
// - each gradient is one optimizer step at lr / world (N pushes per round move the parameters about as
//   far as one synchronous step on the average), clipped on its own;
// - replicas differ during training: every worker holds the parameters of its last release. After its
//   last step every worker waits for the FINAL parameters, sent once every gradient is applied, so all
//   ranks end bitwise equal (checked by the session's hash exchange at the end only).
//
// Messages are point-to-point, tagged (round = the worker's step), and announced as 'ps-round'
// ChunkEvents: phase 'gather' for gradients in, 'broadcast' for parameters out.
import { acceptGradient, mayProceed } from '../collective/ps';
import type { ChunkListener, MessageTag, Phase, Transport } from '../collective/types';
import { viewOf, type Backend, type DeviceBuffer } from '../engine/backend';
import type { Model } from '../model/model';
import { GradClipper, type Optimizer } from '../train/optimizer';
import type { GradSyncContext, GradSyncResult } from '../train/trainer';
import { COLLECTIVE_IDS } from '../collective/collective-ids';

export interface AsyncParameterServerOptions {
  backend: Backend;
  transport: Transport;
  model: Model;
  /** The run's optimizer: used on the server only. */
  optimizer: () => Optimizer;
  /** Steps every rank takes (the server knows when all gradients are in). */
  steps: number;
  /** Maximum steps a worker may run ahead of the slowest, >= 1. */
  staleness: number;
  learningRate: (step: number) => number;
  /** Per-gradient norm clip at the server; 0: off. */
  clipNorm: number;
  server?: number;
  onChunk?: ChunkListener;
}

/** One release decision of the server, kept for tests and the log. */
export interface Release {
  worker: number;
  /** Steps the worker has pushed (it is about to start step `clock`). */
  clock: number;
  /** Steps the slowest worker has pushed at that moment. */
  slowest: number;
}

const GRAD_COLLECTIVE = COLLECTIVE_IDS.asyncPsGradients.first;
const PARAMS_COLLECTIVE = COLLECTIVE_IDS.asyncPsParams.first;
const FINAL_COLLECTIVE = COLLECTIVE_IDS.asyncPsFinal.first;
const HEADER_BYTES = 4;

/** [u32 round | float32 vector]: the server round the parameters are from, or a gradient was computed on. */
function pack(round: number, values: Float32Array): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + values.byteLength);
  new DataView(out.buffer).setUint32(0, round, true);
  out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), HEADER_BYTES);
  return out;
}

function unpack(payload: Uint8Array, length: number, what: string): { round: number; values: Float32Array } {
  if (payload.byteLength !== HEADER_BYTES + length * 4) throw new Error(`${what} has ${payload.byteLength} bytes, expected ${HEADER_BYTES + length * 4}`);
  const round = new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0, true);
  return { round, values: new Float32Array(payload.slice(HEADER_BYTES).buffer) };
}

interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

export class AsyncParameterServer {
  readonly server: number;
  /** Server only: every release in order (tests check the staleness bound on it). */
  readonly releases: Release[] = [];
  /** Server only: gradients refused as too stale. */
  dropped = 0;
  /** Server round of the parameters this rank holds. */
  private baseRound = 0;
  /** Server only: bytes its background loop moved since its own last step reported them. */
  private unreported = { bytesSent: 0, bytesReceived: 0 };
  // --- server state ---
  private clocks: number[];
  private version = 0;
  private started = false;
  private chain: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  private readonly awaitingRelease = new Set<number>();
  private readonly localWaiters = new Map<string, Waiter>();
  private readonly localDone = new Set<string>();
  private serverGrads: DeviceBuffer | undefined;
  private clipper: GradClipper | undefined;

  constructor(private readonly o: AsyncParameterServerOptions) {
    this.server = o.server ?? 0;
    const { world } = o.transport;
    if (!(this.server >= 0 && this.server < world)) throw new RangeError(`no rank ${this.server} to be the server`);
    if (!Number.isSafeInteger(o.staleness) || o.staleness < 1) throw new RangeError(`asynchronous mode needs staleness >= 1, got ${o.staleness}`);
    if (!Number.isSafeInteger(o.steps) || o.steps < 1) throw new RangeError(`steps must be an integer >= 1, got ${o.steps}`);
    this.clocks = new Array(world).fill(0);
  }

  get isServer(): boolean {
    return this.o.transport.rank === this.server;
  }

  /** gradSync: push this step's gradient to the server (the server's own goes straight in). */
  gradSync = async (ctx: GradSyncContext): Promise<GradSyncResult> => {
    this.throwIfFailed();
    const { backend, transport, model } = this.o;
    const grads = await backend.read(viewOf(model.grads));
    if (this.isServer) {
      this.startServer();
      this.enqueue(this.server, ctx.step, this.baseRound, grads);
      return {};
    }
    const payload = pack(this.baseRound, grads);
    const tStart = performance.now();
    await transport.send(this.server, this.tag(ctx.step, GRAD_COLLECTIVE), payload);
    this.emit('send', 'gather', this.server, ctx.step, GRAD_COLLECTIVE, payload.byteLength, tStart);
    return { bytesSent: payload.byteLength };
  };

  /** afterUpdate: wait to be released with the server's parameters (the final ones after the last step). */
  afterUpdate = async (ctx: GradSyncContext): Promise<GradSyncResult> => {
    const last = ctx.step === this.o.steps - 1;
    const collective = last ? FINAL_COLLECTIVE : PARAMS_COLLECTIVE;
    if (this.isServer) {
      await this.localSignal(`${collective}:${ctx.step}`);
      // The server's traffic runs in the background; its steps report what moved since the last one.
      const moved = this.unreported;
      this.unreported = { bytesSent: 0, bytesReceived: 0 };
      return moved;
    }
    const { backend, transport, model } = this.o;
    const tStart = performance.now();
    const payload = await transport.recv(this.server, this.tag(ctx.step, collective));
    this.emit('recv', 'broadcast', this.server, ctx.step, collective, payload.byteLength, tStart);
    const { round, values } = unpack(payload, model.params.length, `parameters from the server`);
    backend.write(viewOf(model.params), values);
    this.baseRound = round;
    return { bytesReceived: payload.byteLength };
  };

  dispose(): void {
    if (this.serverGrads) this.o.backend.free(this.serverGrads);
    this.clipper?.dispose();
  }

  // --- server -------------------------------------------------------------------------------------

  private startServer(): void {
    if (this.started) return;
    this.started = true;
    const { backend, transport, model } = this.o;
    this.serverGrads = backend.alloc(model.grads.length, 'ps.incoming-gradient', 'workspace');
    if (this.o.clipNorm > 0) this.clipper = new GradClipper(backend);
    for (let worker = 0; worker < transport.world; worker++) {
      if (worker === this.server) continue;
      void this.receiveFrom(worker).catch((error) => this.fail(error));
    }
  }

  private async receiveFrom(worker: number): Promise<void> {
    const length = this.o.model.grads.length;
    for (let step = 0; step < this.o.steps; step++) {
      const tStart = performance.now();
      const payload = await this.o.transport.recv(worker, this.tag(step, GRAD_COLLECTIVE));
      this.emit('recv', 'gather', worker, step, GRAD_COLLECTIVE, payload.byteLength, tStart);
      this.unreported.bytesReceived += payload.byteLength;
      const { round, values } = unpack(payload, length, `gradient of rank ${worker} step ${step}`);
      this.enqueue(worker, step, round, values);
    }
  }

  /** Applies gradients one at a time, in arrival order, then releases whoever may go on. */
  private enqueue(worker: number, step: number, baseRound: number, grads: Float32Array): void {
    this.chain = this.chain
      .then(() => this.apply(worker, step, baseRound, grads))
      .catch((error) => this.fail(error));
  }

  private async apply(worker: number, step: number, baseRound: number, grads: Float32Array): Promise<void> {
    if (this.failure) return;
    if (step !== this.clocks[worker]) throw new Error(`rank ${worker} pushed step ${step}, expected ${this.clocks[worker]}`);
    const { backend, model, transport } = this.o;
    const decision = acceptGradient(baseRound, this.slowest(), this.o.staleness);
    this.clocks[worker]++;
    if (decision.ok) {
      const g = this.serverGrads!;
      backend.write(viewOf(g), grads);
      if (this.clipper) this.clipper.clip(g, this.o.clipNorm);
      this.version++;
      this.o.optimizer().update(model.params, g, this.version, this.o.learningRate(step) / transport.world);
    } else {
      this.dropped++;
    }
    if (this.clocks[worker] < this.o.steps) this.awaitingRelease.add(worker);
    await this.releaseWhoMay();
    if (this.clocks.every((clock) => clock === this.o.steps)) await this.sendFinal();
  }

  private slowest(): number {
    return Math.min(...this.clocks);
  }

  private async releaseWhoMay(): Promise<void> {
    const slowest = this.slowest();
    for (const worker of [...this.awaitingRelease].sort((a, b) => a - b)) {
      const clock = this.clocks[worker];
      if (!mayProceed(clock, slowest, this.o.staleness).ok) continue;
      this.awaitingRelease.delete(worker);
      this.releases.push({ worker, clock, slowest });
      await this.sendParams(worker, clock - 1, PARAMS_COLLECTIVE, slowest);
    }
  }

  private async sendFinal(): Promise<void> {
    // The server's own rank last: its final step then reports every byte the run moved.
    const workers = [...Array(this.o.transport.world).keys()].filter((w) => w !== this.server);
    for (const worker of [...workers, this.server]) await this.sendParams(worker, this.o.steps - 1, FINAL_COLLECTIVE, this.o.steps);
  }

  /** Sends the current parameters as the answer to `worker`'s push of `step`. */
  private async sendParams(worker: number, step: number, collective: number, round: number): Promise<void> {
    if (worker === this.server) {
      this.baseRound = round;
      this.signalLocal(`${collective}:${step}`);
      return;
    }
    const params = await this.o.backend.read(viewOf(this.o.model.params));
    const payload = pack(round, params);
    const tStart = performance.now();
    await this.o.transport.send(worker, this.tag(step, collective), payload);
    this.emit('send', 'broadcast', worker, step, collective, payload.byteLength, tStart);
    this.unreported.bytesSent += payload.byteLength;
  }

  // --- the server rank's own worker waits on local signals ----------------------------------------

  private localSignal(key: string): Promise<void> {
    this.throwIfFailed();
    if (this.localDone.delete(key)) return Promise.resolve();
    return new Promise((resolve, reject) => this.localWaiters.set(key, { resolve, reject }));
  }

  private signalLocal(key: string): void {
    const waiter = this.localWaiters.get(key);
    if (waiter) {
      this.localWaiters.delete(key);
      waiter.resolve();
    } else this.localDone.add(key);
  }

  private fail(error: unknown): void {
    if (this.failure) return;
    this.failure = error instanceof Error ? error : new Error(String(error));
    for (const waiter of this.localWaiters.values()) waiter.reject(this.failure);
    this.localWaiters.clear();
  }

  private throwIfFailed(): void {
    if (this.failure) throw new Error(`parameter server failed: ${this.failure.message}`, { cause: this.failure });
  }

  // --- messages and events ------------------------------------------------------------------------

  private tag(step: number, collective: number): MessageTag {
    return { round: step, collective, chunk: 0 };
  }

  private emit(direction: 'send' | 'recv', phase: Phase, peer: number, round: number, collective: number, bytes: number, tStart: number): void {
    const length = this.o.model.params.length;
    this.o.onChunk?.({
      type: 'chunk',
      direction,
      collective: 'ps-round',
      runId: `${round}:${collective}`,
      round,
      phase,
      step: 0,
      chunk: 0,
      part: 0,
      rank: this.o.transport.rank,
      peer,
      bytes,
      offset: 0,
      length,
      tStart,
      tEnd: performance.now(),
    });
  }
}

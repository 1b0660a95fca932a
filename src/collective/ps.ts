// The parameter-server protocol. Synchronous: one round = gather the gradients at the server, the
// server updates, broadcast the parameters (schedules.parameterServerRound, run by the executor).
// Asynchronous with bounded staleness: pure policy functions and a small bookkeeping class, so the
// rules are tested here and the trainer only asks them.

import { type RunOptions, type RunStats, runSchedule } from './executor';
import { type ScheduleOptions, parameterServerRound } from './schedules';
import type { Transport } from './types';

export interface SyncRoundOptions extends RunOptions, ScheduleOptions {
  server: number;
  /** Runs on the server only, between gather and broadcast: apply the (summed or averaged) gradient. */
  update: (grads: Float32Array, params: Float32Array) => void | Promise<void>;
}

/**
 * One synchronous round. Every rank calls it; afterwards every rank's `params` equal the server's.
 * Gather and broadcast use collective ids `collective` and `collective + 1`.
 */
export async function runSyncParameterServerRound(transport: Transport, grads: Float32Array, params: Float32Array, opts: SyncRoundOptions): Promise<RunStats> {
  if (grads.length !== params.length) throw new RangeError(`gradients (${grads.length}) and parameters (${params.length}) differ in size`);
  const round = parameterServerRound(opts.server, transport.world, transport.rank, grads.length, opts);
  const gathered = await runSchedule(transport, round.gather, grads, opts);
  if (transport.rank === opts.server) await opts.update(grads, params);
  const sent = await runSchedule(transport, round.broadcast, params, { ...opts, collective: opts.collective + 1, average: false });
  return {
    bytesSent: gathered.bytesSent + sent.bytesSent,
    bytesReceived: gathered.bytesReceived + sent.bytesReceived,
    messagesSent: gathered.messagesSent + sent.messagesSent,
    messagesReceived: gathered.messagesReceived + sent.messagesReceived,
    ms: gathered.ms + sent.ms,
  };
}

export type Decision = { ok: true } | { ok: false; reason: string };

function checkBound(bound: number): void {
  if (!Number.isSafeInteger(bound) || bound < 0) throw new RangeError(`staleness bound must be an integer >= 0, got ${bound}`);
}

/**
 * Stale-synchronous parallel: a worker that finished `workerStep` steps may start the next one only
 * while it is at most `bound` steps ahead of the slowest worker. bound = 0 is fully synchronous.
 */
export function mayProceed(workerStep: number, slowestStep: number, bound: number): Decision {
  checkBound(bound);
  const ahead = workerStep - slowestStep;
  return ahead <= bound ? { ok: true } : { ok: false, reason: `${ahead} steps ahead of the slowest worker (bound ${bound}): wait` };
}

/**
 * Server side: a gradient computed on parameters of version `gradVersion` is applied while the server
 * is at most `bound` versions further; staler ones are dropped (they would pull towards old weights).
 */
export function acceptGradient(gradVersion: number, serverVersion: number, bound: number): Decision {
  checkBound(bound);
  if (gradVersion > serverVersion) return { ok: false, reason: `version ${gradVersion} is from the future (server at ${serverVersion})` };
  const staleness = serverVersion - gradVersion;
  return staleness <= bound ? { ok: true } : { ok: false, reason: `staleness ${staleness} exceeds the bound ${bound}` };
}

/** The server's bookkeeping for asynchronous training: versions and per-worker clocks. */
export class AsyncServerState {
  /** Number of updates applied so far. */
  version = 0;
  private readonly clocks: number[];

  constructor(readonly workers: number, readonly bound: number) {
    checkBound(bound);
    if (!Number.isSafeInteger(workers) || workers < 1) throw new RangeError(`workers must be an integer >= 1, got ${workers}`);
    this.clocks = new Array(workers).fill(0);
  }

  /**
   * A worker pushed a gradient computed at parameter version `baseVersion`. Counts the worker's step
   * either way (it did the work); the caller applies the gradient only when the decision says ok.
   */
  push(worker: number, baseVersion: number): Decision {
    this.checkWorker(worker);
    this.clocks[worker]++;
    const decision = acceptGradient(baseVersion, this.version, this.bound);
    if (decision.ok) this.version++;
    return decision;
  }

  /** Whether `worker` may start its next step now (SSP over the workers' clocks). */
  mayStart(worker: number): Decision {
    this.checkWorker(worker);
    return mayProceed(this.clocks[worker], Math.min(...this.clocks), this.bound);
  }

  clockOf(worker: number): number {
    this.checkWorker(worker);
    return this.clocks[worker];
  }

  private checkWorker(worker: number): void {
    if (!Number.isSafeInteger(worker) || worker < 0 || worker >= this.workers) throw new RangeError(`no worker ${worker}`);
  }
}

// Synchronous parameter server: rank `server` holds the parameters' master copy and the only optimizer
// state. Every step the workers' gradients are gathered at the server and averaged there (summed in rank
// order), the server clips and updates like a single tab would, and broadcasts the parameters; workers
// skip the update (trainer option localUpdate: false) and hold no optimizer state.
//
// Both halves run the schedules of collective/schedules.ts (parameterServerRound), so the dashboard sees
// the star as 'ps-round' ChunkEvents: (N-1) full vectors into the server's link and (N-1) out of it,
// against the ring's 2(N-1)/N per rank.
import { runSchedule } from '../collective/executor';
import { parameterServerRound } from '../collective/schedules';
import type { ChunkListener, Transport } from '../collective/types';
import { viewOf, type Backend, VIEW_ALIGNMENT } from '../engine/backend';
import type { FlatRange } from '../model/layout';
import type { Model } from '../model/model';
import type { GradSyncContext, GradSyncResult } from '../train/trainer';
import { COLLECTIVE_IDS } from '../collective/collective-ids';

export interface ParameterServerOptions {
  backend: Backend;
  transport: Transport;
  model: Model;
  server?: number;
  onChunk?: ChunkListener;
}

/** Collective ids of one round: gradients in, parameters out. */
export const PS_GATHER_COLLECTIVE = COLLECTIVE_IDS.psGather.first;
export const PS_BROADCAST_COLLECTIVE = COLLECTIVE_IDS.psBroadcast.first;

/**
 * Optimizer state a parameter-server rank must hold: all of it on the server. A worker never updates,
 * but the Optimizer class refuses an empty state range, so it gets the smallest aligned slice (64 floats
 * per state buffer: 512 bytes for AdamW instead of 8 bytes per parameter).
 */
export function psOptimizerStateRange(rank: number, server: number): FlatRange | undefined {
  return rank === server ? undefined : { offset: 0, length: VIEW_ALIGNMENT };
}

/** The lab's parameter server is rank 0: the first tab of a room. */
export const PARAMETER_SERVER_RANK = 0;

export class SyncParameterServer {
  readonly server: number;

  constructor(private readonly o: ParameterServerOptions) {
    this.server = o.server ?? 0;
    if (!(this.server >= 0 && this.server < o.transport.world)) throw new RangeError(`no rank ${this.server} to be the server`);
  }

  get isServer(): boolean {
    return this.o.transport.rank === this.server;
  }

  /** gradSync: gather the gradients at the server; there they are replaced by their average. */
  gradSync = async (ctx: GradSyncContext): Promise<GradSyncResult> => {
    const { backend, transport, model, onChunk } = this.o;
    const view = viewOf(model.grads);
    const grads = await backend.read(view);
    const { gather } = parameterServerRound(this.server, transport.world, transport.rank, grads.length);
    const stats = await runSchedule(transport, gather, grads, { round: ctx.step, collective: PS_GATHER_COLLECTIVE, average: true, onEvent: onChunk });
    if (this.isServer) backend.write(view, grads);
    return { bytesSent: stats.bytesSent, bytesReceived: stats.bytesReceived };
  };

  /** afterUpdate: the server broadcasts the parameters it just updated; workers take them. */
  afterUpdate = async (ctx: GradSyncContext): Promise<GradSyncResult> => {
    const { backend, transport, model, onChunk } = this.o;
    const view = viewOf(model.params);
    const params = this.isServer ? await backend.read(view) : new Float32Array(view.length);
    const { broadcast } = parameterServerRound(this.server, transport.world, transport.rank, params.length);
    const stats = await runSchedule(transport, broadcast, params, { round: ctx.step, collective: PS_BROADCAST_COLLECTIVE, onEvent: onChunk });
    if (!this.isServer) backend.write(view, params);
    return { bytesSent: stats.bytesSent, bytesReceived: stats.bytesReceived };
  };
}

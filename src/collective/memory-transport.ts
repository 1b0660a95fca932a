// N ranks in one process: the Transport the unit tests (and the in-browser simulator) run collectives
// over. Payloads are copied on send, as a real wire would, so a sender that overwrites its buffer
// afterwards cannot change what was delivered. Optional per-link latency and bandwidth let benchmarks
// and the dashboard's simulator show the shape of a slow network; `kill` makes a rank vanish so that
// failure handling can be tested.

import type { MessageTag, Transport } from './types';

export interface MemoryMeshOptions {
  /** One-way delay added to every message, per link. */
  latencyMs?: number;
  /** Per-link one-way delay, overriding `latencyMs` (to model uneven networks or reorder arrivals). */
  linkLatencyMs?: (from: number, to: number) => number;
  /** Link speed; each directed link serialises its messages at this rate. Infinity: no limit. */
  bytesPerSec?: number;
  /** A recv that waits longer than this rejects (the transport owns the deadline). */
  recvTimeoutMs?: number;
}

export class PeerLostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeerLostError';
  }
}

interface Waiter {
  resolve: (payload: Uint8Array) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

const tagKey = (from: number, tag: MessageTag): string => `${from}|${tag.round}|${tag.collective}|${tag.chunk}`;

/** Shared state of one in-memory mesh: who is alive and when each directed link is next free. */
class MemoryLinks {
  readonly alive: boolean[];
  readonly endpoints: MemoryTransport[] = [];
  /** performance.now() at which link from -> to finishes serialising what it was given. */
  private readonly linkFreeAt: number[];

  constructor(readonly world: number, readonly options: Required<Omit<MemoryMeshOptions, 'linkLatencyMs'>> & MemoryMeshOptions) {
    this.alive = new Array(world).fill(true);
    this.linkFreeAt = new Array(world * world).fill(0);
  }

  /** Milliseconds until the bytes have left the sender, and until they arrive. */
  reserveLink(from: number, to: number, bytes: number): { leftMs: number; arrivesMs: number } {
    const now = performance.now();
    const start = Math.max(now, this.linkFreeAt[from * this.world + to]);
    const serialiseMs = Number.isFinite(this.options.bytesPerSec) ? (bytes / this.options.bytesPerSec) * 1000 : 0;
    this.linkFreeAt[from * this.world + to] = start + serialiseMs;
    const leftMs = start + serialiseMs - now;
    const latency = this.options.linkLatencyMs ? this.options.linkLatencyMs(from, to) : this.options.latencyMs;
    return { leftMs, arrivesMs: leftMs + latency };
  }
}

export class MemoryTransport implements Transport {
  private readonly inbox = new Map<string, Uint8Array>();
  private readonly waiters = new Map<string, Waiter>();
  private readonly waitersByPeer = new Map<number, Set<string>>();
  private closedReason: string | null = null;

  constructor(private readonly mesh: MemoryLinks, readonly rank: number) {}

  get world(): number {
    return this.mesh.world;
  }

  async send(to: number, tag: MessageTag, payload: Uint8Array): Promise<void> {
    this.checkPeer(to);
    this.throwIfClosed();
    if (!this.mesh.alive[to]) throw new PeerLostError(`rank ${this.rank}: cannot send to rank ${to}, it is gone`);
    const copy = payload.slice();
    const { leftMs, arrivesMs } = this.mesh.reserveLink(this.rank, to, copy.byteLength);
    const receiver = this.mesh.endpoints[to];
    if (arrivesMs <= 0) receiver.deliver(this.rank, tag, copy);
    else setTimeout(() => receiver.deliver(this.rank, tag, copy), arrivesMs);
    // Backpressure: resolve when the bytes have left, so a fast sender is held to the link speed.
    if (leftMs > 0) await new Promise((resolve) => setTimeout(resolve, leftMs));
  }

  recv(from: number, tag: MessageTag): Promise<Uint8Array> {
    this.checkPeer(from);
    if (this.closedReason) return Promise.reject(new PeerLostError(this.closedReason));
    const key = tagKey(from, tag);
    const early = this.inbox.get(key);
    if (early) {
      this.inbox.delete(key);
      return Promise.resolve(early);
    }
    if (!this.mesh.alive[from]) return Promise.reject(new PeerLostError(`rank ${this.rank}: rank ${from} is gone`));
    if (this.waiters.has(key)) return Promise.reject(new Error(`rank ${this.rank}: already waiting for ${key}`));
    return new Promise<Uint8Array>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, timer: undefined };
      if (Number.isFinite(this.mesh.options.recvTimeoutMs)) {
        waiter.timer = setTimeout(
          () => this.settle(from, key, (w) => w.reject(new Error(`rank ${this.rank}: timed out waiting for ${key} from rank ${from}`))),
          this.mesh.options.recvTimeoutMs,
        );
      }
      this.waiters.set(key, waiter);
      let keys = this.waitersByPeer.get(from);
      if (!keys) this.waitersByPeer.set(from, (keys = new Set()));
      keys.add(key);
    });
  }

  /** Makes this rank vanish: its own pending and future calls reject, and so do its peers' receives from it. */
  kill(reason = `rank ${this.rank} was killed`): void {
    if (!this.mesh.alive[this.rank]) return;
    this.mesh.alive[this.rank] = false;
    this.close(reason);
    for (const peer of this.mesh.endpoints) if (peer !== this) peer.peerLost(this.rank);
  }

  /** Messages that arrived and were never asked for (a test can assert none are left over). */
  get pendingMessages(): number {
    return this.inbox.size;
  }

  private close(reason: string): void {
    this.closedReason = reason;
    this.inbox.clear();
    for (const [from, keys] of this.waitersByPeer) {
      for (const key of [...keys]) this.settle(from, key, (w) => w.reject(new PeerLostError(reason)));
    }
  }

  private peerLost(rank: number): void {
    for (const key of [...(this.waitersByPeer.get(rank) ?? [])]) {
      this.settle(rank, key, (w) => w.reject(new PeerLostError(`rank ${this.rank}: rank ${rank} is gone`)));
    }
  }

  private deliver(from: number, tag: MessageTag, payload: Uint8Array): void {
    if (this.closedReason) return;
    const key = tagKey(from, tag);
    if (this.waiters.has(key)) {
      this.settle(from, key, (w) => w.resolve(payload));
      return;
    }
    // A duplicate tag is a protocol error by the sender; keep the first copy (it is what a receiver of
    // the real wire would already have acted on) and drop the second.
    if (!this.inbox.has(key)) this.inbox.set(key, payload);
  }

  private settle(from: number, key: string, action: (waiter: Waiter) => void): void {
    const waiter = this.waiters.get(key);
    if (!waiter) return;
    this.waiters.delete(key);
    this.waitersByPeer.get(from)?.delete(key);
    if (waiter.timer !== undefined) clearTimeout(waiter.timer);
    action(waiter);
  }

  private checkPeer(peer: number): void {
    if (!Number.isSafeInteger(peer) || peer < 0 || peer >= this.world || peer === this.rank) {
      throw new RangeError(`rank ${this.rank}: invalid peer ${peer} in a world of ${this.world}`);
    }
  }

  private throwIfClosed(): void {
    if (this.closedReason) throw new PeerLostError(this.closedReason);
  }
}

/** Creates `world` connected in-memory transports; transport i has rank i. */
export function createMemoryMesh(world: number, options: MemoryMeshOptions = {}): MemoryTransport[] {
  if (!Number.isSafeInteger(world) || world < 1) throw new RangeError(`world must be an integer >= 1, got ${world}`);
  const mesh = new MemoryLinks(world, {
    ...options,
    latencyMs: options.latencyMs ?? 0,
    bytesPerSec: options.bytesPerSec ?? Infinity,
    recvTimeoutMs: options.recvTimeoutMs ?? 60_000,
  });
  for (let rank = 0; rank < world; rank++) mesh.endpoints.push(new MemoryTransport(mesh, rank));
  return [...mesh.endpoints];
}

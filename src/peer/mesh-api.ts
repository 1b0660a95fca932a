// `window.lab.mesh`: a small automation hook over the mesh for e2e tests and bench/ring.ts. It joins a
// room, waits for the expected members, and runs the real ring all-reduce (src/collective) over the
// real data-channel transport. Results are plain data so that page.evaluate returns them unchanged.
import { runAllReduce } from '../collective/collectives';
import { EventBus, type PeerInfo } from '../shared/events';
import { DataChannelTransport } from './datachannel-transport';
import { hostileFrames, type HostileKind } from './hostile-frames';
import type { LinkStats, Mesh } from './mesh';
import { openMesh } from './open-mesh';
import { normalizeRoomName } from './room-code';
import { COLLECTIVE_IDS } from '../collective/collective-ids';

export interface MeshJoinOptions {
  /** ws:// URL of the signalling server; absent: BroadcastChannel (tabs of one browser). */
  signal?: string;
  /** Members to wait for before the group is fixed (default 2). */
  expect?: number;
  /** How long to wait for them and their links (default 60 s). */
  timeoutMs?: number;
  iceServers?: RTCIceServer[];
  /** Deadline of every receive (default 60 s). */
  deadlineMs?: number;
  /** The room secret (auth.ts); absent: an open room. */
  secret?: string;
  /** Refusals after which a peer is excluded (default 200; 0: never). */
  maxRefused?: number;
}

export interface FuzzResult {
  /** Frames put on the wire, per receiving peer. */
  sent: number;
  byKind: Partial<Record<HostileKind, number>>;
  ms: number;
  /** Sending stopped early (the receiver excluded us and closed the link): why. */
  stopped?: string;
}

export interface MeshJoinResult {
  peerId: string;
  rank: number;
  world: number;
  members: string[];
}

export interface MeshStatus {
  joined: boolean;
  room: string | null;
  peerId: string | null;
  rank: number;
  world: number;
  members: string[];
  peers: PeerInfo[];
  links: LinkStats[];
  bytesSent: number;
  bytesReceived: number;
  refusedFrames: number;
  /** The last few refusal reasons, newest last. */
  refusedReasons: string[];
  /** The mesh's last log lines (links opened, lost, retried), newest last. */
  log: string[];
  /** Peers this tab excluded, and why. */
  excluded: { peerId: string; reason: string }[];
}

export interface MeshApi {
  join(room: string, opts?: MeshJoinOptions): Promise<MeshJoinResult>;
  /** Sum over the group, element-wise, by ring all-reduce (or 'naive': everyone sends everyone everything). */
  allReduce(values: Float32Array | number[], opts?: { algorithm?: 'ring' | 'naive' }): Promise<Float32Array>;
  /**
   * Raw link speed for the benchmark: every rank streams `bytes` to its ring successor while receiving
   * as many from its predecessor, in messages of the collectives' size, over the same transport.
   */
  ringStream(bytes: number): Promise<{ ms: number }>;
  status(): MeshStatus;
  leave(): void;
  /**
   * TEST HOOK (e2e/hostile.spec.ts): sends `count` hostile frames (hostile-frames.ts, seeded) over the
   * real data channels to every linked peer (or one), under backpressure, as a broken or malicious
   * tab would. The receivers must refuse every one.
   */
  fuzz(opts: { count: number; seed?: number; to?: string; ranks?: number[] }): Promise<FuzzResult>;
}

const ALLREDUCE_COLLECTIVE = COLLECTIVE_IDS.meshProbeAllReduce.first;
const STREAM_COLLECTIVE = COLLECTIVE_IDS.meshProbeStream.first;
/** The collectives' message size (chunking.ts): 256 KiB less room for a header. */
const STREAM_MESSAGE_BYTES = 256 * 1024 - 1024;

class MeshSession implements MeshApi {
  private mesh: Mesh | null = null;
  private transport: DataChannelTransport | null = null;
  private members: string[] = [];
  private round = 0;
  private streamRound = 0;
  private refusedReasons: string[] = [];
  private logLines: string[] = [];
  /** The mesh publishes here; events are kept for status() and passed on to the page's bus. */
  private readonly bus = new EventBus();

  constructor(outer?: EventBus) {
    this.bus.subscribe((event) => {
      if (event.type === 'log') {
        this.logLines.push(`${Math.round(event.t)} ${event.level}: ${event.message}`);
        if (this.logLines.length > 200) this.logLines.splice(0, 100);
      }
      outer?.publish(event);
    });
  }

  async join(room: string, opts: MeshJoinOptions = {}): Promise<MeshJoinResult> {
    this.leave();
    const name = normalizeRoomName(room);
    const expect = opts.expect ?? 2;
    if (!Number.isInteger(expect) || expect < 1) throw new RangeError(`expect must be a positive integer, got ${expect}`);
    const mesh = await openMesh({
      room: name,
      signal: opts.signal,
      secret: opts.secret,
      iceServers: opts.iceServers,
      bus: this.bus,
      maxRefusedPerPeer: opts.maxRefused,
      onMesh: (opened) => {
        this.mesh = opened;
        opened.on({ refused: (from, reason) => this.noteRefused(`${from}: ${reason}`) });
      },
    });
    const peerId = mesh.peerId;
    this.members = await mesh.waitForRoom(expect, opts.timeoutMs ?? 60_000);
    this.transport = new DataChannelTransport(mesh, { members: this.members, deadlineMs: opts.deadlineMs });
    this.round = 0;
    this.streamRound = 0;
    return { peerId, rank: this.transport.rank, world: this.transport.world, members: [...this.members] };
  }

  async allReduce(values: Float32Array | number[], opts: { algorithm?: 'ring' | 'naive' } = {}): Promise<Float32Array> {
    const transport = this.requireTransport();
    const data = Float32Array.from(values);
    await runAllReduce(transport, data, {
      round: this.round++,
      collective: ALLREDUCE_COLLECTIVE,
      algorithm: opts.algorithm,
      onEvent: (event) => this.bus.publish(event),
    });
    return data;
  }

  async ringStream(bytes: number): Promise<{ ms: number }> {
    const transport = this.requireTransport();
    if (transport.world < 2) return { ms: 0 };
    const next = (transport.rank + 1) % transport.world;
    const prev = (transport.rank - 1 + transport.world) % transport.world;
    const round = this.streamRound++;
    const messages = Math.max(1, Math.ceil(bytes / STREAM_MESSAGE_BYTES));
    const payload = new Uint8Array(Math.min(bytes, STREAM_MESSAGE_BYTES));
    const t0 = performance.now();
    const received = Promise.all(
      Array.from({ length: messages }, (_, chunk) => transport.recv(prev, { round, collective: STREAM_COLLECTIVE, chunk })),
    );
    for (let chunk = 0; chunk < messages; chunk++) {
      const size = Math.min(STREAM_MESSAGE_BYTES, bytes - chunk * STREAM_MESSAGE_BYTES);
      await transport.send(next, { round, collective: STREAM_COLLECTIVE, chunk }, payload.subarray(0, Math.max(0, size)));
    }
    await received;
    return { ms: performance.now() - t0 };
  }

  status(): MeshStatus {
    const mesh = this.mesh;
    const report = mesh?.peersReport();
    return {
      joined: this.transport !== null,
      room: mesh?.room ?? null,
      peerId: mesh?.peerId ?? null,
      rank: this.transport?.rank ?? -1,
      world: this.transport?.world ?? 0,
      members: [...this.members],
      peers: report?.peers ?? [],
      links: mesh?.linkStats() ?? [],
      bytesSent: this.transport?.bytesSent ?? 0,
      bytesReceived: this.transport?.bytesReceived ?? 0,
      refusedFrames: mesh?.refusalStats().count ?? 0,
      refusedReasons: this.refusedReasons.slice(-20),
      log: this.logLines.slice(-50),
      excluded: mesh?.excludedPeers() ?? [],
    };
  }

  async fuzz(opts: { count: number; seed?: number; to?: string; ranks?: number[] }): Promise<FuzzResult> {
    const mesh = this.mesh;
    if (!mesh) throw new Error('join a room first: lab.mesh.join(room, { expect })');
    const targets = opts.to ? [opts.to] : this.members.filter((id) => id !== mesh.peerId);
    const byKind: Partial<Record<HostileKind, number>> = {};
    const t0 = performance.now();
    let sent = 0;
    const frames = hostileFrames(opts.seed ?? 1, opts.count, { roomHash: mesh.roomHash, ranks: opts.ranks ?? [0, 1] });
    for (const { kind, bytes } of frames) {
      for (const to of targets) {
        // backpressure: never queue more than 1 MiB on a channel
        for (let waited = 0; (mesh.channel(to)?.bufferedAmount ?? 0) > 1 << 20; waited++) {
          if (waited > 2000) return { sent, byKind, ms: performance.now() - t0, stopped: `channel to ${to} stalled` };
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        try {
          await mesh.sendRaw(to, bytes);
        } catch (error) {
          return { sent, byKind, ms: performance.now() - t0, stopped: error instanceof Error ? error.message : String(error) };
        }
      }
      sent++;
      byKind[kind] = (byKind[kind] ?? 0) + 1;
      // yield now and then so the page stays responsive
      if (sent % 500 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    return { sent, byKind, ms: performance.now() - t0 };
  }

  leave(): void {
    this.transport?.close('left the room');
    this.mesh?.close();
    this.transport = null;
    this.mesh = null;
    this.members = [];
    this.refusedReasons = [];
  }

  private requireTransport(): DataChannelTransport {
    if (!this.transport) throw new Error('join a room first: lab.mesh.join(room, { expect })');
    return this.transport;
  }

  private noteRefused(reason: string): void {
    this.refusedReasons.push(reason);
    if (this.refusedReasons.length > 1000) this.refusedReasons.splice(0, 500);
  }
}

/** Adds `mesh` (a MeshApi) to `target`, normally `window.lab`. Events go to `bus` when given. */
export function installMeshApi(target: Record<string, unknown>, opts: { bus?: EventBus } = {}): MeshApi {
  const api = new MeshSession(opts.bus);
  target.mesh = api;
  return api;
}

// Pure geometry and timing for the ring view: where ranks sit, which links a topology has, where a
// chunk is on its link at a given moment, how fast each link moved bytes. Everything here is a function
// of the recorded ChunkEvents, so the drawing can only show what the transport reported.
import type { ChunkEvent, Phase } from '../collective/types';

export type Topology = 'ring' | 'ps' | 'all-to-all';

export interface Point {
  x: number;
  y: number;
}

export interface Link {
  from: number;
  to: number;
}

/** One message on the wire: a send and/or the matching receive, merged. */
export interface Transfer {
  key: string;
  runId: string;
  round: number;
  phase: Phase;
  step: number;
  chunk: number;
  part: number;
  from: number;
  to: number;
  bytes: number;
  tStart: number;
  tEnd: number;
}

export interface Marker {
  transfer: Transfer;
  /** How far along its link, 0 at the sender, 1 at the receiver. */
  frac: number;
  x: number;
  y: number;
}

/** Ranks on a circle, rank 0 at the top, clockwise; in a star the server sits in the middle. */
export function nodePositions(world: number, topology: Topology, size: number, psServer = 0): Point[] {
  const c = size / 2;
  const radius = size * 0.36;
  const onCircle = topology === 'ps' ? world - 1 : world;
  const points: Point[] = [];
  let slot = 0;
  for (let rank = 0; rank < world; rank++) {
    if (topology === 'ps' && rank === psServer) {
      points.push({ x: c, y: c });
      continue;
    }
    const angle = -Math.PI / 2 + (2 * Math.PI * slot) / Math.max(1, onCircle);
    points.push({ x: c + radius * Math.cos(angle), y: c + radius * Math.sin(angle) });
    slot++;
  }
  return points;
}

/** The links a topology uses, each direction listed once. */
export function topologyLinks(world: number, topology: Topology, psServer = 0): Link[] {
  const links: Link[] = [];
  if (world < 2) return links;
  for (let a = 0; a < world; a++) {
    if (topology === 'ring') links.push({ from: a, to: (a + 1) % world });
    else if (topology === 'ps') {
      if (a !== psServer) links.push({ from: a, to: psServer }, { from: psServer, to: a });
    } else {
      for (let b = 0; b < world; b++) if (b !== a) links.push({ from: a, to: b });
    }
  }
  // A ring of two is one link each way; drop the duplicate a ring of one would make.
  return links.filter((l, i) => links.findIndex((m) => m.from === l.from && m.to === l.to) === i);
}

/**
 * Merges send and receive events of the same message into one transfer. The send's start and the
 * receive's end are the truest bounds of the time on the wire; with only one side known, its own.
 */
export function mergeTransfers(events: Iterable<ChunkEvent>): Transfer[] {
  const byKey = new Map<string, Transfer & { hasSend: boolean; hasRecv: boolean }>();
  for (const e of events) {
    const from = e.direction === 'send' ? e.rank : e.peer;
    const to = e.direction === 'send' ? e.peer : e.rank;
    const key = `${e.runId}|${e.step}|${e.chunk}|${e.part}|${from}>${to}`;
    const known = byKey.get(key);
    if (!known) {
      byKey.set(key, {
        key,
        runId: e.runId,
        round: e.round,
        phase: e.phase,
        step: e.step,
        chunk: e.chunk,
        part: e.part,
        from,
        to,
        bytes: e.bytes,
        tStart: e.tStart,
        tEnd: e.tEnd,
        hasSend: e.direction === 'send',
        hasRecv: e.direction === 'recv',
      });
      continue;
    }
    if (e.direction === 'send') {
      known.tStart = e.tStart;
      if (!known.hasRecv) known.tEnd = e.tEnd;
      known.hasSend = true;
    } else {
      known.tEnd = e.tEnd;
      if (!known.hasSend) known.tStart = e.tStart;
      known.hasRecv = true;
    }
  }
  return [...byKey.values()].map(({ hasSend: _s, hasRecv: _r, ...t }) => t);
}

/**
 * A point between two nodes, pushed sideways by `offset` so that the two directions of one link (a star's
 * up and down) do not draw on top of each other.
 */
export function pointOnLink(a: Point, b: Point, frac: number, offset = 0): Point {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const len = Math.hypot(dx, dy) || 1;
  return { x: a.x + dx * frac - (dy / len) * offset, y: a.y + dy * frac + (dx / len) * offset };
}

/** Markers of the transfers on the wire at time t, each where its timing puts it. */
export function movingMarkers(transfers: readonly Transfer[], nodes: readonly Point[], t: number, offset = 0): Marker[] {
  const markers: Marker[] = [];
  for (const transfer of transfers) {
    if (t < transfer.tStart || t > transfer.tEnd) continue;
    const a = nodes[transfer.from];
    const b = nodes[transfer.to];
    if (!a || !b) continue;
    const span = transfer.tEnd - transfer.tStart;
    const frac = span > 0 ? (t - transfer.tStart) / span : 1;
    markers.push({ transfer, frac, ...pointOnLink(a, b, frac, offset) });
  }
  return markers;
}

/**
 * Reduced motion: the newest collective's transfers as still markers, spaced along each link by
 * schedule step, so the whole pattern of one all-reduce reads at a glance.
 */
export function staticMarkers(transfers: readonly Transfer[], nodes: readonly Point[], offset = 0): Marker[] {
  let newest: Transfer | undefined;
  for (const t of transfers) if (!newest || t.tEnd > newest.tEnd) newest = t;
  if (!newest) return [];
  const run = transfers.filter((t) => t.runId === newest.runId);
  const maxStep = Math.max(...run.map((t) => t.step));
  const markers: Marker[] = [];
  for (const transfer of run) {
    const a = nodes[transfer.from];
    const b = nodes[transfer.to];
    if (!a || !b) continue;
    const frac = (transfer.step + 1) / (maxStep + 2);
    markers.push({ transfer, frac, ...pointOnLink(a, b, frac, offset) });
  }
  return markers;
}

/**
 * Bytes per second each link carried while busy, over the transfers that ended within `windowMs` of
 * the newest one. Busy time is the union of the link's transfer intervals, so pipelined parts that
 * overlap are not double counted.
 */
export function linkThroughput(transfers: readonly Transfer[], windowMs = 2000): Map<string, number> {
  let newestEnd = -Infinity;
  for (const t of transfers) newestEnd = Math.max(newestEnd, t.tEnd);
  const perLink = new Map<string, Transfer[]>();
  for (const t of transfers) {
    if (t.tEnd < newestEnd - windowMs) continue;
    const key = linkKey(t.from, t.to);
    const list = perLink.get(key) ?? [];
    list.push(t);
    perLink.set(key, list);
  }
  const out = new Map<string, number>();
  for (const [key, list] of perLink) {
    list.sort((a, b) => a.tStart - b.tStart);
    let busy = 0;
    let bytes = 0;
    let openStart = list[0].tStart;
    let openEnd = list[0].tEnd;
    for (const t of list) {
      bytes += t.bytes;
      if (t.tStart > openEnd) {
        busy += openEnd - openStart;
        openStart = t.tStart;
        openEnd = t.tEnd;
      } else openEnd = Math.max(openEnd, t.tEnd);
    }
    busy += openEnd - openStart;
    if (busy > 0) out.set(key, (bytes * 1000) / busy);
  }
  return out;
}

export function linkKey(from: number, to: number): string {
  return `${from}>${to}`;
}

/** Reduce-scatter warm, all-gather cool, the rest in between; the chunk index shifts the lightness. */
const PHASE_HUE: Record<Phase, number> = {
  'reduce-scatter': 25,
  'all-gather': 210,
  broadcast: 280,
  gather: 130,
  scatter: 330,
  exchange: 55,
};

export function chunkColor(phase: Phase, chunk: number): string {
  const lightness = 38 + ((chunk * 11) % 33);
  return `hsl(${PHASE_HUE[phase]} 85% ${lightness}%)`;
}

export function phaseColor(phase: Phase): string {
  return chunkColor(phase, 1);
}

export function formatRate(bytesPerSec: number): string {
  if (bytesPerSec >= 1e6) return `${(bytesPerSec / 1e6).toFixed(1)} MB/s`;
  if (bytesPerSec >= 1e3) return `${(bytesPerSec / 1e3).toFixed(1)} kB/s`;
  return `${bytesPerSec.toFixed(0)} B/s`;
}

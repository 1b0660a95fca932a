// Ranks as nodes, links between them, and every chunk the transport reported moving along its link
// from its real start to its real end. Nodes and links are React; the chunk markers and link rates are
// drawn imperatively from a store subscription, once per animation frame, so a busy ring costs no
// React renders. With reduced motion the newest collective is drawn as still markers instead.
import { useEffect, useMemo, useRef, useState } from 'react';
import type { LabStore } from '../store/lab-store';
import { useLab } from '../store/lab-store';
import {
  chunkColor,
  formatRate,
  linkKey,
  linkThroughput,
  mergeTransfers,
  movingMarkers,
  nodePositions,
  phaseColor,
  pointOnLink,
  staticMarkers,
  topologyLinks,
  type Marker,
  type Point,
  type Topology,
  type Transfer,
} from './ring-geometry';
import { PlaybackClock } from './playback-clock';
import { usePrefersReducedMotion } from './use-reduced-motion';

const SIZE = 420;
const NODE_R = 26;
/** Sideways offset of a direction of a link, so that both directions of a star's spoke show. */
const LANE = 6;
const SVG_NS = 'http://www.w3.org/2000/svg';
const SPEEDS = [
  { scale: 1, label: 'real time' },
  { scale: 0.1, label: '1/10 speed' },
  { scale: 0.01, label: '1/100 speed' },
];

export interface RingViewProps {
  store: LabStore;
  topology: Topology;
  /** Ranks to draw; defaults to the room's world size. */
  world?: number;
  psServer?: number;
  /** Overrides prefers-reduced-motion. */
  reducedMotion?: boolean;
  /** Wall clock (performance.now by default); tests pass their own. */
  now?: () => number;
}

export function RingView({ store, topology, world: worldProp, psServer = 0, reducedMotion, now }: RingViewProps) {
  const roomWorld = useLab(store, (s) => s.self?.world ?? 1);
  const world = worldProp ?? roomWorld;
  const selfRank = useLab(store, (s) => s.self?.rank ?? -1);
  const prefersReduced = usePrefersReducedMotion();
  const still = reducedMotion ?? prefersReduced;
  const [scale, setScale] = useState(1);

  const nodes = useMemo(() => nodePositions(world, topology, SIZE, psServer), [world, topology, psServer]);
  const links = useMemo(() => topologyLinks(world, topology, psServer), [world, topology, psServer]);
  const markerLayer = useRef<SVGGElement>(null);
  const rateLayer = useRef<SVGGElement>(null);
  // Written by the draw loop, not through React state: it changes with nearly every frame of traffic,
  // and re-rendering the view that often was a visible share of a training tab's main thread.
  const lagLine = useRef<HTMLSpanElement>(null);
  const clockRef = useRef(new PlaybackClock(scale));
  clockRef.current.scale = scale;
  const nowRef = useRef(now ?? (() => performance.now()));
  nowRef.current = now ?? (() => performance.now());

  useEffect(() => {
    const markerGroup = markerLayer.current;
    const rateGroup = rateLayer.current;
    if (!markerGroup || !rateGroup) return;
    const clock = clockRef.current;
    let transfers: Transfer[] = [];
    let newestEnd = -Infinity;
    let seenTick = -1;
    // Events already in the store when this effect starts (a remount, a motion toggle) finished long
    // ago: they are drawn still or not at all, but must not stretch the replay lag.
    let cursor = store.getState().chunks.pushed;
    let frame = 0;

    const drawFrame = () => {
      frame = 0;
      const state = store.getState();
      const wall = nowRef.current();
      if (state.chunkTick !== seenTick) {
        seenTick = state.chunkTick;
        const fresh = state.chunks.since(cursor);
        cursor = state.chunks.pushed;
        // Chunk events received so far, for scripts and tests: the markers come and go, this counts up.
        markerGroup.dataset.events = String(cursor);
        for (const e of fresh) clock.observe(e, wall);
        transfers = mergeTransfers(state.chunks.toArray());
        newestEnd = transfers.reduce((m, t) => Math.max(m, t.tEnd), -Infinity);
        drawRates(rateGroup, linkThroughput(transfers), nodes);
      }
      let markers: Marker[];
      if (still) markers = staticMarkers(transfers, nodes, LANE);
      else {
        const t = clock.tick(wall);
        markers = Number.isNaN(t) ? [] : movingMarkers(transfers, nodes, t, LANE);
        const lagText = clock.lagMs > 0 ? `replayed ${clock.lagMs.toFixed(0)} ms behind live` : '';
        if (lagLine.current && lagLine.current.textContent !== lagText) lagLine.current.textContent = lagText;
        // Keep drawing only while something is (or is about to be) on the wire.
        if (!Number.isNaN(t) && t <= newestEnd) frame = requestAnimationFrame(drawFrame);
      }
      drawMarkers(markerGroup, markers);
    };
    const schedule = () => {
      if (frame === 0) frame = requestAnimationFrame(drawFrame);
    };
    schedule();
    const unsubscribe = store.subscribe((state, prev) => {
      if (state.chunkTick !== prev.chunkTick) schedule();
    });
    return () => {
      unsubscribe();
      if (frame !== 0) cancelAnimationFrame(frame);
    };
  }, [store, nodes, still]);

  const title =
    topology === 'ring' ? `Ring of ${world}` : topology === 'ps' ? `Parameter server, ${world} ranks` : `All-to-all, ${world} ranks`;
  return (
    <section className="panel ring-view" aria-labelledby="ring-title">
      <h2 id="ring-title">Chunk flow</h2>
      <div className="ring-toolbar">
        <label>
          Replay speed{' '}
          <select value={scale} onChange={(e) => setScale(Number(e.target.value))} disabled={still}>
            {SPEEDS.map((s) => (
              <option key={s.scale} value={s.scale}>
                {s.label}
              </option>
            ))}
          </select>
        </label>
        {still ? (
          <span className="muted" aria-live="off">
            Reduced motion: the newest collective, still
          </span>
        ) : (
          <span className="muted" aria-live="off" ref={lagLine} data-testid="replay-lag" />
        )}
      </div>
      <svg
        viewBox={`0 0 ${SIZE} ${SIZE}`}
        role="img"
        aria-label={`${title}: each dot is a chunk on the wire, as the transport reported it`}
        className="ring-svg"
      >
        <g className="links">
          {links.map((l) => {
            const a = pointOnLink(nodes[l.from], nodes[l.to], 0, LANE);
            const b = pointOnLink(nodes[l.from], nodes[l.to], 1, LANE);
            return (
              <line
                key={linkKey(l.from, l.to)}
                data-link={linkKey(l.from, l.to)}
                x1={a.x}
                y1={a.y}
                x2={b.x}
                y2={b.y}
                className="link"
                markerEnd="url(#arrow)"
              />
            );
          })}
        </g>
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX={10 + NODE_R / 2} refY="5" markerWidth="6" markerHeight="6" orient="auto">
            <path d="M0,0 L10,5 L0,10 z" className="arrow" />
          </marker>
        </defs>
        <g ref={rateLayer} className="rates" />
        <g ref={markerLayer} className="chunks" />
        <g className="nodes">
          {nodes.map((p, rank) => (
            <g key={rank} data-rank={rank} className={rank === selfRank ? 'node self' : 'node'}>
              <circle cx={p.x} cy={p.y} r={NODE_R} />
              <text x={p.x} y={p.y} dy="0.35em" textAnchor="middle">
                {rank === psServer && topology === 'ps' ? `PS ${rank}` : rank}
              </text>
            </g>
          ))}
        </g>
      </svg>
      <ul className="legend">
        <li>
          <span className="swatch" style={{ background: phaseColor('reduce-scatter') }} /> reduce-scatter
        </li>
        <li>
          <span className="swatch" style={{ background: phaseColor('all-gather') }} /> all-gather
        </li>
        <li>
          <span className="swatch" style={{ background: phaseColor('gather') }} /> gather / scatter (PS)
        </li>
        <li className="muted">shade: chunk index</li>
      </ul>
    </section>
  );
}

function drawMarkers(group: SVGGElement, markers: readonly Marker[]): void {
  const existing = new Map<string, SVGCircleElement>();
  for (const el of Array.from(group.children)) existing.set((el as SVGElement).dataset.key ?? '', el as SVGCircleElement);
  for (const m of markers) {
    const t = m.transfer;
    let el = existing.get(t.key);
    if (el) existing.delete(t.key);
    else {
      el = document.createElementNS(SVG_NS, 'circle');
      el.setAttribute('r', '7');
      el.setAttribute('class', 'chunk');
      const d = el.dataset;
      d.key = t.key;
      d.run = t.runId;
      d.round = String(t.round);
      d.phase = t.phase;
      d.step = String(t.step);
      d.chunk = String(t.chunk);
      d.part = String(t.part);
      d.from = String(t.from);
      d.to = String(t.to);
      d.bytes = String(t.bytes);
      el.setAttribute('fill', chunkColor(t.phase, t.chunk));
      group.appendChild(el);
    }
    el.setAttribute('cx', m.x.toFixed(2));
    el.setAttribute('cy', m.y.toFixed(2));
    el.dataset.frac = m.frac.toFixed(3);
  }
  for (const el of existing.values()) el.remove();
}

function drawRates(group: SVGGElement, rates: Map<string, number>, nodes: readonly Point[]): void {
  group.replaceChildren();
  for (const [key, rate] of rates) {
    const [from, to] = key.split('>').map(Number);
    if (!nodes[from] || !nodes[to]) continue;
    const p = pointOnLink(nodes[from], nodes[to], 0.5, LANE * 3.5);
    const text = document.createElementNS(SVG_NS, 'text');
    text.setAttribute('x', p.x.toFixed(1));
    text.setAttribute('y', p.y.toFixed(1));
    text.setAttribute('text-anchor', 'middle');
    text.setAttribute('class', 'rate');
    text.dataset.link = key;
    text.dataset.bytesPerSec = rate.toFixed(0);
    text.textContent = formatRate(rate);
    group.appendChild(text);
  }
}

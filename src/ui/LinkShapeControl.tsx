// The dashboard's per-link shaping: give the link to one peer its own latency and bandwidth (this
// tab's sends on it; src/peer/link-shaper.ts), so a class can make one path slow and watch the ring
// wait for it, or clear it back to the room's latency= and bandwidth=.
import { useState } from 'react';
import type { LinkSetting } from '../lab/controller';

export interface LinkShapeControlProps {
  peers: readonly { peerId: string; rank: number; name?: string }[];
  /** Applies (or, with null, clears) a link's shape; throws with the reason when it cannot. */
  onShape(peerId: string, setting: LinkSetting | null): void;
}

export function LinkShapeControl({ peers, onShape }: LinkShapeControlProps) {
  const [peer, setPeer] = useState('');
  const [latency, setLatency] = useState('20');
  const [bandwidth, setBandwidth] = useState('5');
  const [outcome, setOutcome] = useState<{ ok: boolean; text: string } | null>(null);
  const chosen = peers.some((p) => p.peerId === peer) ? peer : (peers[0]?.peerId ?? '');
  const label = (p: LinkShapeControlProps['peers'][number]) => `rank ${p.rank}${p.name ? ` (${p.name})` : ''}`;
  const apply = (setting: LinkSetting | null) => {
    try {
      onShape(chosen, setting);
      const who = label(peers.find((p) => p.peerId === chosen)!);
      setOutcome({ ok: true, text: setting ? `Link to ${who}: ${setting.latency} ms, ${setting.bandwidth > 0 ? `${setting.bandwidth} MB/s` : 'unlimited'}.` : `Link to ${who}: the room's setting again.` });
    } catch (e) {
      setOutcome({ ok: false, text: e instanceof Error ? e.message : String(e) });
    }
  };
  if (peers.length === 0) return null;
  return (
    <section className="panel link-shape" aria-labelledby="link-shape-title">
      <h2 id="link-shape-title">Shape one link</h2>
      <p className="muted small">What this tab sends to one peer gets its own latency and bandwidth.</p>
      <label htmlFor="link-shape-peer">Peer</label>{' '}
      <select id="link-shape-peer" value={chosen} onChange={(e) => setPeer(e.target.value)}>
        {peers.map((p) => (
          <option key={p.peerId} value={p.peerId}>
            {label(p)}
          </option>
        ))}
      </select>{' '}
      <label htmlFor="link-shape-latency">Latency (ms)</label>{' '}
      <input id="link-shape-latency" type="number" min={0} value={latency} onChange={(e) => setLatency(e.target.value)} size={5} />{' '}
      <label htmlFor="link-shape-bandwidth">Bandwidth (MB/s, 0: unlimited)</label>{' '}
      <input id="link-shape-bandwidth" type="number" min={0} value={bandwidth} onChange={(e) => setBandwidth(e.target.value)} size={5} />{' '}
      <button type="button" onClick={() => apply({ latency: Number(latency), bandwidth: Number(bandwidth) })}>
        Apply
      </button>{' '}
      <button type="button" onClick={() => apply(null)}>
        Clear
      </button>
      {outcome && (
        <p role={outcome.ok ? 'status' : 'alert'} className={outcome.ok ? 'small' : 'small error'}>
          {outcome.text}
        </p>
      )}
    </section>
  );
}

// The room at a glance: every rank, the name its student typed, its connection and the network path it
// takes (direct, through a NAT, or relayed by TURN), round-trip time, throughput, its step time (a tab
// much slower than the room's median is marked as lagging: in a synchronous ring it holds everyone
// back), its backend (WebGPU or the CPU fallback), and whether its parameter hash agrees with ours.
// Long identifiers are cut to the panel's width (the full text is their tooltip).
import type { PeerInfo, PeersReport } from '../shared/events';
import type { HashRow } from '../store/lab-state';
import { formatRate } from './ring-geometry';

export interface PeersTableProps {
  self: PeersReport['self'] | null;
  peers: readonly PeerInfo[];
  hashes: readonly HashRow[];
}

/** The newest step whose hash this rank and `rank` both reported: do they match? */
function hashVerdict(hashes: readonly HashRow[], selfRank: number, rank: number): boolean | undefined {
  for (let i = hashes.length - 1; i >= 0; i--) {
    const row = hashes[i];
    const mine = row.byRank[selfRank];
    const theirs = row.byRank[rank];
    if (mine !== undefined && theirs !== undefined) return mine === theirs;
  }
  return undefined;
}

const PATH_TITLES: Record<NonNullable<PeerInfo['path']>, string> = {
  host: 'direct: both ends reach each other on the local network',
  srflx: 'through a NAT, found with STUN',
  prflx: 'through a NAT, found during the connection checks',
  relay: 'relayed by the TURN server: works where direct paths are blocked, slower',
};

/** A tab is lagging when its step takes this many times the room's median step time. */
export const LAGGING_FACTOR = 1.5;

/** The median of the known step times (0: unknown), or null when none is known. */
export function medianStepMs(times: readonly (number | undefined)[]): number | null {
  const known = times.filter((t): t is number => t !== undefined && t > 0).sort((a, b) => a - b);
  if (known.length === 0) return null;
  const mid = known.length >> 1;
  return known.length % 2 ? known[mid] : (known[mid - 1] + known[mid]) / 2;
}

function StepTime({ ms, median }: { ms: number | undefined; median: number | null }) {
  if (ms === undefined || ms <= 0) return <td>—</td>;
  const lagging = median !== null && ms > LAGGING_FACTOR * median;
  return (
    <td className={lagging ? 'bad lagging' : ''} title={lagging ? `lagging: ${(ms / median!).toFixed(1)}x the room's median step time` : undefined}>
      {Math.round(ms)} ms{lagging ? ' slow' : ''}
    </td>
  );
}

function verdictText(v: boolean | undefined): string {
  return v === undefined ? '…' : v ? '✓ agrees' : '✗ differs';
}

// Columns by what a room needs to see first in a narrow side panel: whether replicas agree and links
// work; the long identifiers (peer id, adapter) come last, where the panel may scroll them off.
export function PeersTable({ self, peers, hashes }: PeersTableProps) {
  // Tabs in the room but not (yet) in the ring have rank -1: listed last, as joining.
  const ringRank = (rank: number) => (rank < 0 ? Infinity : rank);
  const sorted = [...peers].sort((a, b) => ringRank(a.rank) - ringRank(b.rank));
  const median = medianStepMs([self?.msPerStep, ...peers.map((p) => p.msPerStep)]);
  return (
    <section className="panel peers" aria-labelledby="peers-title">
      <h2 id="peers-title">Peers{self ? ` (room ${self.room}, ${self.world} ranks)` : ''}</h2>
      {!self ? (
        <p className="muted">Not in a room.</p>
      ) : (
        <table className="peers-table">
          {/* Widths by what a cell holds; the long identifiers share what is left. */}
          <colgroup>
            <col style={{ width: '8%' }} />
            <col style={{ width: '13%' }} />
            <col style={{ width: '11%' }} />
            <col style={{ width: '12%' }} />
            <col style={{ width: '8%' }} />
            <col style={{ width: '9%' }} />
            <col style={{ width: '9%' }} />
            <col style={{ width: '11%' }} />
            <col style={{ width: '8%' }} />
            <col style={{ width: '11%' }} />
          </colgroup>
          <thead>
            <tr>
              <th scope="col">Rank</th>
              <th scope="col">Name</th>
              <th scope="col">Hash</th>
              <th scope="col">State</th>
              <th scope="col">Path</th>
              <th scope="col">RTT</th>
              <th scope="col" title="Throughput of the link, both directions">
                Rate
              </th>
              <th scope="col" title="Wall-clock time of one step; a tab much slower than the median is lagging">
                Step
              </th>
              <th scope="col">Peer</th>
              <th scope="col">Backend</th>
            </tr>
          </thead>
          <tbody>
            <tr data-rank={self.rank} className="self">
              <th scope="row">{self.rank < 0 ? 'joining' : self.rank}</th>
              <td className="name" title={self.name || undefined}>
                {self.name || '—'}
              </td>
              <td>—</td>
              <td>—</td>
              <td>—</td>
              <td>—</td>
              <td>—</td>
              <StepTime ms={self.msPerStep} median={median} />
              <td className="peer-id" title={`${self.peerId} (this tab)`}>
                {self.peerId} (this tab)
              </td>
              <td>—</td>
            </tr>
            {sorted.map((p) => {
              const agrees = p.rank < 0 ? undefined : (p.hashAgrees ?? hashVerdict(hashes, self.rank, p.rank));
              return (
                <tr key={p.peerId} data-rank={p.rank} className={`state-${p.state}`}>
                  <th scope="row">{p.rank < 0 ? 'joining' : p.rank}</th>
                  <td className="name" title={p.name || undefined} data-testid={`name-${p.peerId}`}>
                    {p.name || '—'}
                  </td>
                  <td className={agrees === false ? 'bad' : agrees ? 'good' : ''} data-testid={`hash-${p.rank}`}>
                    {verdictText(agrees)}
                  </td>
                  <td data-testid={`state-${p.rank}`}>{p.state}</td>
                  <td data-testid={`path-${p.peerId}`} className={`path path-${p.path ?? 'unknown'}`} title={p.path ? PATH_TITLES[p.path] : undefined}>
                    {p.path ?? '—'}
                  </td>
                  <td>{p.rttMs === undefined ? '—' : `${p.rttMs.toFixed(1)} ms`}</td>
                  <td>{p.throughputBytesPerSec === undefined ? '—' : formatRate(p.throughputBytesPerSec)}</td>
                  <StepTime ms={p.msPerStep} median={median} />
                  <td className="peer-id" title={p.peerId}>
                    {p.peerId}
                  </td>
                  <td className={`backend backend-${p.backend?.kind ?? 'unknown'}`} data-testid={`backend-${p.peerId}`} title={p.backend ? `${p.backend.kind}: ${p.backend.adapter}` : undefined}>
                    {p.backend ? `${p.backend.kind}: ${p.backend.adapter}` : '—'}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

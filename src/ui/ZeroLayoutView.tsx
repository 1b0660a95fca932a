// Per rank, which slice of the flat parameter vector it owns, and for params, grads and optimizer state
// whether it holds only that slice or a full replica, with the bytes that implies and the bytes it
// actually allocated (its MemoryReport).
import type { MemoryKind } from '../engine/backend';
import { formatBytes, heldRanges, measuredBytes, type ZeroStage } from './zero-layout';

export interface ZeroLayoutViewProps {
  partition: readonly { rank: number; start: number; end: number }[];
  total: number;
  stage: ZeroStage;
  optimizerFloatsPerParam: number;
  memory?: Record<number, Record<MemoryKind, number>>;
  /** Shown when the stage drawn is the one configured for the next run, not the running one. */
  planned?: boolean;
}

const KIND_LABEL = { params: 'parameters', grads: 'gradients', optimizer: 'optimizer state' } as const;

export function ZeroLayoutView({ partition, total, stage, optimizerFloatsPerParam, memory, planned }: ZeroLayoutViewProps) {
  if (total <= 0) throw new RangeError(`ZeRO layout needs a positive parameter count, got ${total}`);
  return (
    <section className="panel zero-layout" aria-labelledby="zero-title" data-stage={stage}>
      <h2 id="zero-title">
        ZeRO stage {stage} shard layout{planned ? ' (planned for the next run)' : ''}
      </h2>
      <p className="muted">
        {total.toLocaleString('en-US')} parameters; shaded: held by the rank. Stage 1 shards optimizer state, 2 also
        gradients, 3 also parameters.
      </p>
      <table className="zero-table">
        <thead>
          <tr>
            <th scope="col">Rank</th>
            <th scope="col">Held</th>
            <th scope="col">Layout bytes</th>
            <th scope="col">Allocated</th>
          </tr>
        </thead>
        <tbody>
          {partition.map((owned) =>
            heldRanges(owned, total, stage, optimizerFloatsPerParam).map((held, i) => {
              const measured = measuredBytes(memory?.[owned.rank], held.kind);
              return (
                <tr key={`${owned.rank}-${held.kind}`} data-rank={owned.rank} data-kind={held.kind}>
                  {i === 0 && (
                    <th scope="rowgroup" rowSpan={3}>
                      {owned.rank}
                      <div className="muted small">
                        owns [{owned.start}, {owned.end})
                      </div>
                    </th>
                  )}
                  <td>
                    <div className="shard-label">
                      {KIND_LABEL[held.kind]}: {held.sharded ? 'own slice' : 'full replica'}
                    </div>
                    <div className="shard-bar" aria-hidden="true">
                      <div
                        className={`shard-held ${held.kind}`}
                        data-start={held.start}
                        data-end={held.end}
                        style={{ left: `${(100 * held.start) / total}%`, width: `${(100 * (held.end - held.start)) / total}%` }}
                      />
                    </div>
                  </td>
                  <td data-testid="expected-bytes">{formatBytes(held.expectedBytes)}</td>
                  <td>{measured === null ? '—' : formatBytes(measured)}</td>
                </tr>
              );
            }),
          )}
        </tbody>
      </table>
    </section>
  );
}

// Expert and tensor parallelism on the dashboard, from the runs' real events (ExpertRoutingEvent,
// TensorCollectivesEvent in src/shared/events.ts): for experts, a heatmap of the tokens each tab
// routed to each expert in one step (kept assignments; the darker, the more), the assignments each tab
// dropped for want of capacity and the load-balancing loss per block, with this tab's all-to-all bytes
// beside the volume the router's assignment makes; for a tensor-parallel tab, its collectives of the
// step per block and pass (the all-reduces of Megatron's g forward and f backward) with their bytes.
// Nothing is drawn before such a run reports a step.
import type { ExpertRoutingEvent, TensorCollectivesEvent } from '../shared/events';

export function ExpertRoutingView({ step }: { step: ExpertRoutingEvent | null }) {
  if (!step) return null;
  const experts = step.routed[0]?.length ?? 0;
  const most = Math.max(1, ...step.routed.flat());
  const droppedTotal = step.dropped.reduce((s, v) => s + v, 0);
  const madeTotal = step.assignments.reduce((s, v) => s + v, 0);
  return (
    <section className="panel expert-routing" aria-labelledby="expert-routing-title">
      <h2 id="expert-routing-title">Expert routing</h2>
      <p className="muted small">
        Step {step.step}: tokens each tab routed to each expert (kept, all MoE blocks). Dropped: {droppedTotal} of {madeTotal} assignments (
        {madeTotal > 0 ? ((100 * droppedTotal) / madeTotal).toFixed(1) : '0'}%).
      </p>
      <table className="heatmap">
        <thead>
          <tr>
            <th scope="col">Tab</th>
            {Array.from({ length: experts }, (_, e) => (
              <th scope="col" key={e}>
                e{e}
              </th>
            ))}
            <th scope="col">Dropped</th>
          </tr>
        </thead>
        <tbody>
          {step.routed.map((row, tab) => (
            <tr key={tab} data-tab={tab}>
              <th scope="row">{tab}</th>
              {row.map((count, e) => (
                <td key={e} data-testid="routed" style={{ background: `rgba(37, 99, 235, ${(0.08 + (0.82 * count) / most).toFixed(3)})` }}>
                  {count}
                </td>
              ))}
              <td data-testid="dropped">{step.dropped[tab]}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p className="small" data-testid="aux-loss">
        Load-balancing loss per block: {step.auxLoss.map((a) => a.toFixed(4)).join(', ')}
      </p>
      <p className="small" data-testid="expert-bytes">
        All-to-all bytes sent by this tab: {step.wireBytes.toLocaleString('en-US')} (router's assignment: {step.wireFormulaBytes.toLocaleString('en-US')})
      </p>
    </section>
  );
}

export function TensorCollectivesView({ step }: { step: TensorCollectivesEvent | null }) {
  if (!step) return null;
  const blocks = new Map<string, { pass: string; block: number; sublayer: string; count: number; bytes: number; elements: number }>();
  for (const c of step.collectives) {
    const key = `${c.pass}|${c.block}|${c.sublayer}`;
    const row = blocks.get(key) ?? { pass: c.pass, block: c.block, sublayer: c.sublayer, count: 0, bytes: 0, elements: 0 };
    row.count++;
    row.bytes += c.bytesSent;
    row.elements += c.elements;
    blocks.set(key, row);
  }
  const rows = [...blocks.values()];
  return (
    <section className="panel tensor-collectives" aria-labelledby="tensor-collectives-title">
      <h2 id="tensor-collectives-title">Tensor-parallel collectives</h2>
      <p className="muted small">
        Step {step.step}, tensor rank {step.rank}: {step.collectives.length} all-reduces, {step.collectives.reduce((s, c) => s + c.bytesSent, 0).toLocaleString('en-US')} bytes sent.
      </p>
      <table>
        <thead>
          <tr>
            <th scope="col">Pass</th>
            <th scope="col">Block</th>
            <th scope="col">After</th>
            <th scope="col">All-reduces</th>
            <th scope="col">Floats</th>
            <th scope="col">Bytes sent</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={`${r.pass}|${r.block}|${r.sublayer}`} data-testid="collective-row">
              <td>{r.pass}</td>
              <td>{r.block}</td>
              <td>{r.sublayer}</td>
              <td>{r.count}</td>
              <td>{r.elements.toLocaleString('en-US')}</td>
              <td>{r.bytes.toLocaleString('en-US')}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

// Expert parallelism: E experts spread over the N ranks of a group (rank r holds experts
// [r*E/N, (r+1)*E/N)), each rank routing its own tokens (its group, in GShard's sense) with the
// replicated router. One MoE step on one rank, over a Transport:
// 1. route the rank's tokens (src/parallel/moe-layer.ts: top-k, gates, capacity per group, aux loss);
// 2. dispatch: an all-to-all sends each expert's rank the token rows routed to it (per destination a
//    header of the kept count of each of its experts, then the rows, expert by expert, in slot order);
// 3. each rank runs its experts on the rows it received, concatenated per expert in source-rank order;
// 4. an all-to-all with the transposed counts returns the outputs; each rank combines them (gates);
// backward, the same two exchanges carry the gated output gradients to the experts and the input
// gradients back. The router's gradient stays a per-rank partial sum (the caller all-reduces it with
// the rest of the data-parallel gradients).
//
// Each expert receives its rows in the (group, choice, token) order of moeReference, so the outputs,
// the input gradients and the experts' gradients are bitwise those of one rank holding all E experts;
// the router's partial sums, added over the ranks, equal its gradient to float32 rounding.
import { runAllToAll } from '../collective/all-to-all-run';
import type { Transport } from '../collective/types';
import { type Assignment, combineInputGrads, combineOutputs, type ExpertCache, expertBackward, expertForward, type ExpertParams, type MoeConfig, routeGroup, routerBackward, zeroExpert } from './moe-layer';

export interface ExpertParallelForward {
  y: Float32Array;
  /** This group's load-balancing loss (alpha included). */
  auxLoss: number;
  dropped: number;
  /** Kept tokens of this rank's group per expert (one row of the dashboard's heatmap). */
  tokensPerExpert: number[];
  /** Elements of token data (header excluded) this rank sent to other ranks in the dispatch. */
  dispatchedElements: number;
  /** Bytes this rank sent in the dispatch and the return. */
  bytesSent: number[];
  /** From dy (the task loss's gradient w.r.t. y); collective numbers `collective + 2`, `+ 3`. */
  backward(dy: Float32Array): Promise<ExpertParallelBackward>;
}

export interface ExpertParallelBackward {
  dx: Float32Array;
  /** This rank's partial sum of the router's gradient (its tokens only). */
  routerGrad: Float32Array;
  /** Gradients of this rank's experts. */
  expertGrads: ExpertParams[];
  /** Bytes this rank sent in the gradient dispatch and return. */
  bytesSent: number[];
}

export interface ExpertParallelStep {
  y: Float32Array;
  dx: Float32Array;
  /** This rank's partial sum of the router's gradient (its tokens only). */
  routerGrad: Float32Array;
  /** Gradients of this rank's experts. */
  expertGrads: ExpertParams[];
  /** This group's load-balancing loss (alpha included). */
  auxLoss: number;
  dropped: number;
  /** Kept tokens of this rank's group per expert (one row of the dashboard's heatmap). */
  tokensPerExpert: number[];
  /** Bytes this rank sent in each of the four all-to-alls (dispatch, return, grad dispatch, grad return). */
  bytesSent: number[];
  /** Elements of token data (header excluded) this rank sent to other ranks in the dispatch. */
  dispatchedElements: number;
}


/**
 * One forward + backward of the MoE layer on this rank: `x` and `dy` are this rank's tokens [n, C] and
 * the task loss's gradient w.r.t. the layer's output; `experts` are this rank's E/N experts. Collective
 * numbers `collective` .. `collective + 3` of round `round` are used.
 */
export async function expertParallelStep(
  c: MoeConfig,
  transport: Transport,
  router: Float32Array,
  experts: readonly ExpertParams[],
  x: Float32Array,
  dy: Float32Array,
  opts: { round: number; collective: number },
): Promise<ExpertParallelStep> {
  if (dy.length !== x.length) throw new RangeError(`output gradients of ${dy.length} elements for ${x.length} elements of tokens`);
  const forward = await expertParallelForward(c, transport, router, experts, x, opts);
  const backward = await forward.backward(dy);
  return { ...forward, ...backward, bytesSent: [...forward.bytesSent, ...backward.bytesSent] };
}

/** The forward of the MoE layer on this rank (collective numbers `collective`, `+ 1`); see the file comment. */
export async function expertParallelForward(
  c: MoeConfig,
  transport: Transport,
  router: Float32Array,
  experts: readonly ExpertParams[],
  x: Float32Array,
  /**
   * `groups`: the capacity groups the load-balancing loss is averaged over, one per rank that routes
   * tokens: the room's ranks under EP x DP. Default: this expert-parallel group's ranks.
   */
  opts: { round: number; collective: number; groups?: number },
): Promise<ExpertParallelForward> {
  const { world: N, rank } = transport;
  const C = c.width;
  if (c.experts % N !== 0) throw new RangeError(`${c.experts} experts do not spread evenly over ${N} ranks`);
  const El = c.experts / N;
  if (experts.length !== El) throw new RangeError(`rank ${rank} must hold ${El} experts, got ${experts.length}`);
  if (x.length % C !== 0) throw new RangeError(`tokens [n, ${C}] needed, got ${x.length} elements`);
  const n = x.length / C;
  const routing = routeGroup(c, router, x, n);
  const kept = routing.assignments.map((a, i) => ({ a: a as Assignment, i })).filter(({ a }) => a.kept);
  /** Kept assignments bound for rank j, expert by expert, in slot order. */
  const outgoing = Array.from({ length: N }, (_, j) => {
    const list: { a: Assignment; i: number }[] = [];
    for (let e = j * El; e < (j + 1) * El; e++) list.push(...kept.filter(({ a }) => a.expert === e));
    return list;
  });
  const bytesSent: number[] = [];
  const rowsOf = (list: { a: Assignment }[], values: (a: Assignment, k: number) => Float32Array) => {
    const out = new Float32Array(list.length * C);
    list.forEach(({ a }, k) => out.set(values(a, k), k * C));
    return out;
  };

  // 1-2. dispatch: header (kept rows per expert of the destination) + the rows
  const blocks = outgoing.map((list, j) => {
    const header = Array.from({ length: El }, (_, k) => list.filter(({ a }) => a.expert === j * El + k).length);
    const block = new Float32Array(El + list.length * C);
    block.set(header);
    block.set(rowsOf(list, (a) => x.subarray(a.token * C, (a.token + 1) * C)), El);
    return block;
  });
  const dispatch = await runAllToAll(transport, blocks, { round: opts.round, collective: opts.collective });
  bytesSent.push(dispatch.stats.bytesSent);
  // 3. this rank's experts, rows concatenated per expert in source order
  const perSource = dispatch.received.map((block) => Array.from(block.subarray(0, El)));
  const caches: ExpertCache[] = [];
  const outputs: Float32Array[] = [];
  for (let k = 0; k < El; k++) {
    const rows = perSource.reduce((s, counts) => s + counts[k], 0);
    const input = new Float32Array(rows * C);
    let at = 0;
    dispatch.received.forEach((block, src) => {
      const before = perSource[src].slice(0, k).reduce((s, v) => s + v, 0);
      const count = perSource[src][k];
      input.set(block.subarray(El + before * C, El + (before + count) * C), at * C);
      at += count;
    });
    const { y, cache } = expertForward(c, experts[k], input, rows);
    caches.push(cache);
    outputs.push(y);
  }
  /** Splits per-expert row arrays (source-ordered) back into one block per source. */
  const toSources = (perExpert: Float32Array[]) =>
    Array.from({ length: N }, (_, src) => {
      const parts: Float32Array[] = [];
      for (let k = 0; k < El; k++) {
        const before = perSource.slice(0, src).reduce((s, counts) => s + counts[k], 0);
        parts.push(perExpert[k].subarray(before * C, (before + perSource[src][k]) * C));
      }
      const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      return out;
    });
  const data = dispatch.counts.map((row) => row.map((v) => v - El));
  const back = data[0].map((_, i) => data.map((row) => row[i]));
  // 4. outputs back, bound to their assignments
  const returned = await runAllToAll(transport, toSources(outputs), { round: opts.round, collective: opts.collective + 1, counts: back });
  bytesSent.push(returned.stats.bytesSent);
  const outputOf = new Map<number, Float32Array>();
  outgoing.forEach((list, j) => list.forEach(({ i }, k) => outputOf.set(i, returned.received[j].subarray(k * C, (k + 1) * C))));

  const y = new Float32Array(n * C);
  combineOutputs(c, routing, routing.assignments.map((_, i) => outputOf.get(i)), y);
  const dispatchedElements = outgoing.reduce((s, list, j) => s + (j === rank ? 0 : list.length * C), 0);

  const backward = async (dy: Float32Array): Promise<ExpertParallelBackward> => {
    if (dy.length !== x.length) throw new RangeError(`output gradients of ${dy.length} elements for ${x.length} elements of tokens`);
    // gated output gradients to the experts, dGate here
    const dGate = new Float64Array(routing.assignments.length);
    const gradBlocks = outgoing.map((list) =>
      rowsOf(list, (a) => {
        const row = new Float32Array(C);
        for (let i = 0; i < C; i++) row[i] = a.gate * dy[a.token * C + i];
        return row;
      }),
    );
    for (const { a, i } of kept) {
      const out = outputOf.get(i)!;
      let dg = 0;
      for (let q = 0; q < C; q++) dg += dy[a.token * C + q] * out[q];
      dGate[i] = dg;
    }
    const gradDispatch = await runAllToAll(transport, gradBlocks, { round: opts.round, collective: opts.collective + 2, counts: data });
    const expertGrads = experts.map(() => zeroExpert(c));
    const inputGrads: Float32Array[] = [];
    for (let k = 0; k < El; k++) {
      const dyRows = new Float32Array(caches[k].rows * C);
      let at = 0;
      gradDispatch.received.forEach((block, src) => {
        const before = perSource[src].slice(0, k).reduce((s, v) => s + v, 0);
        const count = perSource[src][k];
        dyRows.set(block.subarray(before * C, (before + count) * C), at * C);
        at += count;
      });
      inputGrads.push(expertBackward(c, experts[k], caches[k], dyRows, expertGrads[k]));
    }
    const gradReturn = await runAllToAll(transport, toSources(inputGrads), { round: opts.round, collective: opts.collective + 3, counts: back });
    const inputGradOf = new Array<Float32Array | undefined>(routing.assignments.length);
    outgoing.forEach((list, j) => list.forEach(({ i }, k) => (inputGradOf[i] = gradReturn.received[j].subarray(k * C, (k + 1) * C))));
    const dx = new Float32Array(n * C);
    combineInputGrads(c, routing, inputGradOf, dx);
    const routerGrad = new Float32Array(router.length);
    routerBackward(c, router, x, n, routing, dGate, opts.groups ?? N, routerGrad, dx);
    return { dx, routerGrad, expertGrads, bytesSent: [gradDispatch.stats.bytesSent, gradReturn.stats.bytesSent] };
  };
  return { y, auxLoss: routing.auxLoss, dropped: routing.dropped, tokensPerExpert: routing.keptPerExpert, dispatchedElements, bytesSent, backward };
}

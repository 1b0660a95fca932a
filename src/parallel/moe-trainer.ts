// One optimizer step of an expert-parallel MoE layer on one rank (plain SGD: the foundation's check
// that expert parallelism trains like one rank holding every expert; the lab's Optimizer, on the
// experts' flat layout, is the wiring's job): forward through the all-to-alls, a mean-squared-error
// loss against the rank's targets (mean over all ranks' tokens), backward, the router's partial
// gradients summed over the group with a ring all-reduce, then each rank updates the router (the same
// bits everywhere) and its own experts.
import { runAllReduce } from '../collective/collectives';
import type { Transport } from '../collective/types';
import { expertParallelForward } from './moe-expert-parallel';
import type { ExpertParams, MoeConfig } from './moe-layer';

export interface MoeStepReport {
  /** This rank's share of the loss: sum over its tokens of 1/2 |y - target|^2, divided by all ranks' tokens. */
  loss: number;
  auxLoss: number;
  dropped: number;
  tokensPerExpert: number[];
  bytesSent: number;
}

/** `router` and `experts` are updated in place. `totalTokens`: the tokens of all ranks together. */
export async function expertParallelSgdStep(
  c: MoeConfig,
  transport: Transport,
  router: Float32Array,
  experts: ExpertParams[],
  x: Float32Array,
  target: Float32Array,
  totalTokens: number,
  lr: number,
  round: number,
): Promise<MoeStepReport> {
  if (target.length !== x.length) throw new RangeError(`targets of ${target.length} elements for ${x.length} elements of tokens`);
  const forward = await expertParallelForward(c, transport, router, experts, x, { round, collective: 0 });
  const dy = new Float32Array(x.length);
  let loss = 0;
  for (let i = 0; i < dy.length; i++) {
    const d = forward.y[i] - target[i];
    dy[i] = d / totalTokens;
    loss += (0.5 * d * d) / totalTokens;
  }
  const backward = await forward.backward(dy);
  const stats = transport.world > 1 ? await runAllReduce(transport, backward.routerGrad, { round, collective: 4 }) : { bytesSent: 0 };
  for (let i = 0; i < router.length; i++) router[i] -= lr * backward.routerGrad[i];
  experts.forEach((e, k) => {
    const g = backward.expertGrads[k];
    for (const key of ['w1', 'b1', 'w2', 'b2'] as const) for (let i = 0; i < e[key].length; i++) e[key][i] -= lr * g[key][i];
  });
  return {
    loss,
    auxLoss: forward.auxLoss,
    dropped: forward.dropped,
    tokensPerExpert: forward.tokensPerExpert,
    bytesSent: forward.bytesSent.reduce((s, b) => s + b, 0) + backward.bytesSent.reduce((s, b) => s + b, 0) + stats.bytesSent,
  };
}

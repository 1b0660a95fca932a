// The mixture-of-experts ops' shapes, checks and CPU reference (Switch / GShard routing on the device):
// plain loops over typed arrays, each the twin of a WGSL kernel in shaders/moe.wgsl. The CPU backend's
// MoE ops call these; the WebGPU tests compare the kernels with them.
//
// Routing of n tokens (n = groups x tokens per group) to E experts, top-k (k = 1 or 2):
// - the choice is made on the router's logits (softmax is monotone, and the logits are the same bits on
//   every backend, so the CPU and the GPU route alike; ties go to the lower expert index);
// - gates: top-1 (Switch) g = p[e1]; top-2 (GShard) g_i = p[e_i] / (p[e1] + p[e2]);
// - capacity per group and expert: slots filled by every first choice in token order, then every
//   second choice; an assignment that finds its expert's slots full is dropped (slot MOE_DROPPED);
// - the slot buffer holds expert e's rows at [e * slotsPerExpert, ...): group g's slots at
//   e * slotsPerExpert + g * capacity + position, so an expert's rows are contiguous (one matmul per
//   expert) and in the order one device holding every expert would use (group, choice, token);
// - the load-balancing loss (Switch Transformer, eq. 4) auxWeight * E * mean over groups of
//   sum_e f[g, e] * P[g, e], with f the fraction of the group's tokens whose first choice is e and P the
//   group's mean router probability of e; f counts (no gradient), P carries the gradient to the router.
import type { MoeRouting, MoeShape, View } from './backend';
import { needDType, needLength, needPositive } from './op-checks';

/** "No assignment": a dropped token's slot, an empty slot's assignment. */
export const MOE_NONE = 0xffffffff;

/** Capacity per group and expert: ceil(factor * tokensPerGroup * topk / experts) (GShard), at least 1. */
export function moeCapacity(factor: number, tokensPerGroup: number, topk: number, experts: number): number {
  if (!(factor > 0)) throw new RangeError(`capacity factor must be > 0, got ${factor}`);
  return Math.max(1, Math.ceil((factor * tokensPerGroup * topk) / experts));
}

export function checkMoeShape(op: string, s: MoeShape): void {
  needPositive(op, { ...s });
  if (s.topk !== 1 && s.topk !== 2) throw new RangeError(`${op}: topk must be 1 or 2, got ${s.topk}`);
  if (s.topk > s.experts) throw new RangeError(`${op}: topk ${s.topk} exceeds the ${s.experts} experts`);
  if (s.tokens % s.groups !== 0) throw new RangeError(`${op}: ${s.tokens} tokens do not split into ${s.groups} equal groups`);
  if (s.groups * s.capacity > s.slotsPerExpert) {
    throw new RangeError(`${op}: ${s.groups} groups x capacity ${s.capacity} exceed ${s.slotsPerExpert} slots per expert`);
  }
}

export function checkMoeRoute(op: string, r: MoeRouting, logits: View, s: MoeShape, auxIndex: number): void {
  checkMoeShape(op, s);
  const { tokens: n, experts: E, topk: k, groups: G, slotsPerExpert: S } = s;
  needLength(op, 'logits', logits, n * E);
  needLength(op, 'probs', r.probs, n * E);
  needLength(op, 'gates', r.gates, n * k);
  needLength(op, 'fractions', r.fractions, G * E);
  for (const [name, v, length] of [['choice', r.choice, n * k], ['slot', r.slot, n * k], ['slotToken', r.slotToken, E * S]] as const) {
    needLength(op, name, v, length);
    needDType(op, name, v, 'u32');
  }
  if (!Number.isInteger(auxIndex) || auxIndex < 0) throw new RangeError(`${op}: bad auxIndex ${auxIndex}`);
  needLength(op, 'aux', r.aux, auxIndex + 1);
}

/** Host arrays of a routing (the CPU backend's windows onto the views). */
export interface MoeRoutingArrays {
  probs: Float32Array;
  choice: Uint32Array;
  slot: Uint32Array;
  gates: Float32Array;
  slotToken: Uint32Array;
  fractions: Float32Array;
  aux: Float32Array;
}

export function moeRouteReference(r: MoeRoutingArrays, logits: Float32Array, s: MoeShape, auxWeight: number, auxIndex: number): void {
  const { tokens: n, experts: E, topk: k, groups: G, capacity: cap, slotsPerExpert: S } = s;
  for (let t = 0; t < n; t++) {
    const row = t * E;
    let max = -Infinity;
    for (let e = 0; e < E; e++) max = Math.max(max, logits[row + e]);
    let sum = 0;
    for (let e = 0; e < E; e++) sum += Math.exp(logits[row + e] - max);
    for (let e = 0; e < E; e++) r.probs[row + e] = Math.exp(logits[row + e] - max) / sum;
    let first = 0;
    for (let e = 1; e < E; e++) if (logits[row + e] > logits[row + first]) first = e;
    r.choice[t * k] = first;
    if (k === 1) {
      r.gates[t] = r.probs[row + first];
    } else {
      let second = first === 0 ? 1 : 0;
      for (let e = 0; e < E; e++) if (e !== first && logits[row + e] > logits[row + second]) second = e;
      r.choice[t * k + 1] = second;
      const [p1, p2] = [r.probs[row + first], r.probs[row + second]];
      r.gates[t * k] = p1 / (p1 + p2);
      r.gates[t * k + 1] = p2 / (p1 + p2);
    }
  }
  r.slotToken.subarray(0, E * S).fill(MOE_NONE);
  const perGroup = n / G;
  for (let g = 0; g < G; g++) {
    for (let e = 0; e < E; e++) {
      let used = 0;
      let firsts = 0;
      for (let c = 0; c < k; c++) {
        for (let t = g * perGroup; t < (g + 1) * perGroup; t++) {
          const a = t * k + c;
          if (r.choice[a] !== e) continue;
          if (c === 0) firsts++;
          if (used < cap) {
            const slot = e * S + g * cap + used++;
            r.slot[a] = slot;
            r.slotToken[slot] = a;
          } else {
            r.slot[a] = MOE_NONE;
          }
        }
      }
      r.fractions[g * E + e] = firsts / perGroup;
    }
  }
  let total = 0;
  for (let g = 0; g < G; g++) {
    for (let e = 0; e < E; e++) {
      let mean = 0;
      for (let t = g * perGroup; t < (g + 1) * perGroup; t++) mean += r.probs[t * E + e];
      total += r.fractions[g * E + e] * (mean / perGroup);
    }
  }
  r.aux[auxIndex] = (auxWeight * E * total) / G;
}

/** out[s, :] = x[token of slot s, :], zero for an empty slot. */
export function moeDispatchReference(out: Float32Array, x: Float32Array, slotToken: Uint32Array, s: MoeShape, C: number): void {
  for (let row = 0; row < s.experts * s.slotsPerExpert; row++) {
    const a = slotToken[row];
    for (let c = 0; c < C; c++) out[row * C + c] = a === MOE_NONE ? 0 : x[Math.floor(a / s.topk) * C + c];
  }
}

/** dx[t, :] = sum over t's kept assignments of dOut[slot, :] (overwrites dx). */
export function moeDispatchBackwardReference(dx: Float32Array, dOut: Float32Array, slot: Uint32Array, s: MoeShape, C: number): void {
  for (let t = 0; t < s.tokens; t++) {
    for (let c = 0; c < C; c++) {
      let sum = 0;
      for (let j = 0; j < s.topk; j++) {
        const row = slot[t * s.topk + j];
        if (row !== MOE_NONE) sum += dOut[row * C + c];
      }
      dx[t * C + c] = sum;
    }
  }
}

/** y[t, :] = sum over t's kept assignments of gate * expertOut[slot, :]. */
export function moeCombineReference(y: Float32Array, expertOut: Float32Array, slot: Uint32Array, gates: Float32Array, s: MoeShape, C: number): void {
  for (let t = 0; t < s.tokens; t++) {
    for (let c = 0; c < C; c++) {
      let sum = 0;
      for (let j = 0; j < s.topk; j++) {
        const row = slot[t * s.topk + j];
        if (row !== MOE_NONE) sum += gates[t * s.topk + j] * expertOut[row * C + c];
      }
      y[t * C + c] = sum;
    }
  }
}

/**
 * dExpertOut[s, :] = gate * dy[token of s, :] (zero for an empty slot); dGates[a] = dy[t] . expertOut[slot
 * of a] for a kept assignment, zero for a dropped one. Both overwrite.
 */
export function moeCombineBackwardReference(
  dExpertOut: Float32Array,
  dGates: Float32Array,
  dy: Float32Array,
  expertOut: Float32Array,
  slot: Uint32Array,
  slotToken: Uint32Array,
  gates: Float32Array,
  s: MoeShape,
  C: number,
): void {
  for (let row = 0; row < s.experts * s.slotsPerExpert; row++) {
    const a = slotToken[row];
    for (let c = 0; c < C; c++) dExpertOut[row * C + c] = a === MOE_NONE ? 0 : gates[a] * dy[Math.floor(a / s.topk) * C + c];
  }
  for (let a = 0; a < s.tokens * s.topk; a++) {
    const row = slot[a];
    let dot = 0;
    if (row !== MOE_NONE) {
      const t = Math.floor(a / s.topk);
      for (let c = 0; c < C; c++) dot += dy[t * C + c] * expertOut[row * C + c];
    }
    dGates[a] = dot;
  }
}

/**
 * dLogits (overwritten) from the gates' gradient and the load-balancing loss's (scaled by auxScale, the
 * gradient of the objective with respect to the aux loss), through the gate formula and the softmax.
 */
export function moeRouteBackwardReference(
  dLogits: Float32Array,
  dGates: Float32Array,
  probs: Float32Array,
  choice: Uint32Array,
  fractions: Float32Array,
  s: MoeShape,
  auxWeight: number,
  auxScale: number,
): void {
  const { tokens: n, experts: E, topk: k, groups: G } = s;
  const perGroup = n / G;
  const auxPerProb = (auxScale * auxWeight * E) / (G * perGroup);
  const dp = new Float64Array(E);
  for (let t = 0; t < n; t++) {
    const row = t * E;
    const g = Math.floor(t / perGroup);
    for (let e = 0; e < E; e++) dp[e] = auxPerProb * fractions[g * E + e];
    const e1 = choice[t * k];
    if (k === 1) {
      dp[e1] += dGates[t];
    } else {
      const e2 = choice[t * k + 1];
      const [p1, p2] = [probs[row + e1], probs[row + e2]];
      const [dg1, dg2] = [dGates[t * k], dGates[t * k + 1]];
      const s2 = (p1 + p2) * (p1 + p2);
      dp[e1] += (p2 * (dg1 - dg2)) / s2;
      dp[e2] += (p1 * (dg2 - dg1)) / s2;
    }
    let dot = 0;
    for (let e = 0; e < E; e++) dot += probs[row + e] * dp[e];
    for (let e = 0; e < E; e++) dLogits[row + e] = probs[row + e] * (dp[e] - dot);
  }
}

export function checkMoeRows(op: string, s: MoeShape, C: number, views: Record<string, [View, 'tokens' | 'slots' | 'assignments', 'f32' | 'u32']>): void {
  checkMoeShape(op, s);
  needPositive(op, { C });
  for (const [name, [v, size, dtype]] of Object.entries(views)) {
    const length = size === 'tokens' ? s.tokens * C : size === 'slots' ? s.experts * s.slotsPerExpert * (dtype === 'u32' ? 1 : C) : s.tokens * s.topk;
    needLength(op, name, v, length);
    needDType(op, name, v, dtype);
  }
}

export function checkMoeCombineBackward(op: string, v: Record<'dExpertOut' | 'dGates' | 'dy' | 'expertOut' | 'slot' | 'slotToken' | 'gates', View>, s: MoeShape, C: number): void {
  checkMoeRows(op, s, C, {
    dExpertOut: [v.dExpertOut, 'slots', 'f32'],
    dGates: [v.dGates, 'assignments', 'f32'],
    dy: [v.dy, 'tokens', 'f32'],
    expertOut: [v.expertOut, 'slots', 'f32'],
    slot: [v.slot, 'assignments', 'u32'],
    slotToken: [v.slotToken, 'slots', 'u32'],
    gates: [v.gates, 'assignments', 'f32'],
  });
}

export function checkMoeRouteBackward(op: string, v: Record<'dLogits' | 'dGates' | 'probs' | 'choice' | 'fractions', View>, s: MoeShape): void {
  checkMoeRows(op, s, 1, { dGates: [v.dGates, 'assignments', 'f32'], choice: [v.choice, 'assignments', 'u32'] });
  needLength(op, 'dLogits', v.dLogits, s.tokens * s.experts);
  needLength(op, 'probs', v.probs, s.tokens * s.experts);
  needLength(op, 'fractions', v.fractions, s.groups * s.experts);
}

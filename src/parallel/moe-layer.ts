// A mixture-of-experts layer (Switch Transformer for top-1, GShard for top-2) on the host, in float32
// arrays: the reference that expert parallelism (src/parallel/moe-expert-parallel.ts) must reproduce,
// and the routing both share. For tokens X [N, C]:
// - router: logits = X Wr ([C, E], replicated), probabilities p = softmax(logits) per token;
// - top-k: each token's k most probable experts (ties to the lower index); gates: top-1 g = p (Switch),
//   top-2 g_i = p_i / (p_1 + p_2) (GShard);
// - capacity, per group (GShard's groups: one group per tab's share of the batch):
//   ceil(capacityFactor * n * k / E) slots per expert for a group of n tokens. Slots are filled by all
//   first choices in token order, then all second choices; an assignment that finds its expert full is
//   dropped (counted): the token gets nothing from that expert;
// - experts: two-layer ReLU MLPs C -> H -> C; Y[t] = sum over its kept assignments of g * expert(x_t);
// - the auxiliary load-balancing loss, per group, averaged over groups: alpha * E * sum_e f_e * P_e, f_e
//   the fraction of the group's tokens whose first choice is e, P_e the group's mean probability of e
//   (Switch Transformer, eq. 4); its gradient flows through P only.
//
// Every per-token quantity is computed row by row, and each expert's weight gradients accumulate its
// rows in (group, choice, token) order: the order in which an expert's tab receives them from the
// groups' tabs, so E experts spread over tabs get the same bits as one holder of all of them.
import { Rng } from '../data/random';

export interface MoeConfig {
  /** Model width C, expert hidden width H, experts E. */
  width: number;
  hidden: number;
  experts: number;
  topK: 1 | 2;
  capacityFactor: number;
  /** Weight alpha of the load-balancing loss (Switch: 0.01). */
  auxWeight: number;
}

/** One expert's parameters: W1 [C, H], b1 [H], W2 [H, C], b2 [C]. */
export interface ExpertParams {
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: Float32Array;
}

export interface MoeParams {
  router: Float32Array;
  experts: ExpertParams[];
}

export function checkMoeConfig(c: MoeConfig): void {
  for (const k of ['width', 'hidden', 'experts'] as const) if (!Number.isInteger(c[k]) || c[k] < 1) throw new RangeError(`MoE ${k} must be a positive integer, got ${c[k]}`);
  if (c.topK !== 1 && c.topK !== 2) throw new RangeError(`topk must be 1 or 2, got ${c.topK}`);
  if (c.topK > c.experts) throw new RangeError(`top-${c.topK} needs at least ${c.topK} experts`);
  if (!(c.capacityFactor > 0)) throw new RangeError(`capacity factor must be > 0, got ${c.capacityFactor}`);
  if (!(c.auxWeight >= 0)) throw new RangeError(`aux loss weight must be >= 0, got ${c.auxWeight}`);
}

export function zeroExpert(c: MoeConfig): ExpertParams {
  return { w1: new Float32Array(c.width * c.hidden), b1: new Float32Array(c.hidden), w2: new Float32Array(c.hidden * c.width), b2: new Float32Array(c.width) };
}

export function initMoeParams(c: MoeConfig, seed: number): MoeParams {
  checkMoeConfig(c);
  const rng = new Rng(seed);
  const normal = (n: number, std: number) => Float32Array.from({ length: n }, () => std * rng.normal());
  const experts = Array.from({ length: c.experts }, () => ({ w1: normal(c.width * c.hidden, Math.sqrt(2 / c.width)), b1: normal(c.hidden, 0.1), w2: normal(c.hidden * c.width, Math.sqrt(1 / c.hidden)), b2: normal(c.width, 0.1) }));
  return { router: normal(c.width * c.experts, 1 / Math.sqrt(c.width)), experts };
}

/** One token's assignment to one expert. */
export interface Assignment {
  /** Token index within its group. */
  token: number;
  expert: number;
  /** 0: first choice, 1: second. */
  choice: number;
  gate: number;
  /** Whether the expert had a free slot. */
  kept: boolean;
}

export interface GroupRouting {
  /** [n, E] router probabilities. */
  probs: Float32Array;
  /** In slot-filling order: every first choice in token order, then every second choice. */
  assignments: Assignment[];
  /** Tokens of the group routed to each expert and kept. */
  keptPerExpert: number[];
  dropped: number;
  capacity: number;
  /** The group's load-balancing loss (alpha included), and f_e of it. */
  auxLoss: number;
  firstChoiceFraction: Float32Array;
}

/** Router, top-k, gates and capacity for one group of n tokens (x: [n, C]). */
export function routeGroup(c: MoeConfig, router: Float32Array, x: Float32Array, n: number): GroupRouting {
  const { width: C, experts: E, topK } = c;
  const probs = new Float32Array(n * E);
  const choices: number[][] = [];
  for (let t = 0; t < n; t++) {
    const logits = new Float64Array(E);
    for (let e = 0; e < E; e++) {
      let s = 0;
      for (let i = 0; i < C; i++) s += x[t * C + i] * router[i * E + e];
      logits[e] = Math.fround(s);
    }
    const max = Math.max(...logits);
    let total = 0;
    for (let e = 0; e < E; e++) total += Math.exp(logits[e] - max);
    for (let e = 0; e < E; e++) probs[t * E + e] = Math.exp(logits[e] - max) / total;
    const order = Array.from({ length: E }, (_, e) => e).sort((a, b) => probs[t * E + b] - probs[t * E + a] || a - b);
    choices.push(order.slice(0, topK));
  }
  const capacity = Math.ceil((c.capacityFactor * n * topK) / E);
  const used = new Array<number>(E).fill(0);
  const assignments: Assignment[] = [];
  let dropped = 0;
  for (let choice = 0; choice < topK; choice++) {
    for (let t = 0; t < n; t++) {
      const expert = choices[t][choice];
      const p = probs[t * E + expert];
      const gate = topK === 1 ? p : Math.fround(p / (probs[t * E + choices[t][0]] + probs[t * E + choices[t][1]]));
      const kept = used[expert] < capacity;
      if (kept) used[expert]++;
      else dropped++;
      assignments.push({ token: t, expert, choice, gate, kept });
    }
  }
  const f = new Float32Array(E);
  for (let t = 0; t < n; t++) f[choices[t][0]] += 1 / n;
  let aux = 0;
  for (let e = 0; e < E; e++) {
    let P = 0;
    for (let t = 0; t < n; t++) P += probs[t * E + e];
    aux += f[e] * (P / n);
  }
  return { probs, assignments, keptPerExpert: used, dropped, capacity, auxLoss: c.auxWeight * E * aux, firstChoiceFraction: f };
}

/** Saved for an expert's backward: its input rows and hidden activations. */
export interface ExpertCache {
  rows: number;
  x: Float32Array;
  z: Float32Array;
  h: Float32Array;
}

/** y = relu(x W1 + b1) W2 + b2 for `rows` rows of x [rows, C], row by row. */
export function expertForward(c: MoeConfig, p: ExpertParams, x: Float32Array, rows: number): { y: Float32Array; cache: ExpertCache } {
  const { width: C, hidden: H } = c;
  const z = new Float32Array(rows * H);
  const h = new Float32Array(rows * H);
  const y = new Float32Array(rows * C);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < H; j++) {
      let s = p.b1[j];
      for (let i = 0; i < C; i++) s += x[r * C + i] * p.w1[i * H + j];
      z[r * H + j] = s;
      h[r * H + j] = Math.max(0, z[r * H + j]);
    }
    for (let o = 0; o < C; o++) {
      let s = p.b2[o];
      for (let j = 0; j < H; j++) s += h[r * H + j] * p.w2[j * C + o];
      y[r * C + o] = s;
    }
  }
  return { y, cache: { rows, x, z, h } };
}

/** Accumulates the expert's parameter gradients in row order; returns dx [rows, C]. */
export function expertBackward(c: MoeConfig, p: ExpertParams, cache: ExpertCache, dy: Float32Array, grads: ExpertParams): Float32Array {
  const { width: C, hidden: H } = c;
  const { rows, x, z, h } = cache;
  const dx = new Float32Array(rows * C);
  const dz = new Float32Array(H);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < C; o++) grads.b2[o] += dy[r * C + o];
    for (let j = 0; j < H; j++) {
      let s = 0;
      for (let o = 0; o < C; o++) {
        grads.w2[j * C + o] += h[r * H + j] * dy[r * C + o];
        s += dy[r * C + o] * p.w2[j * C + o];
      }
      dz[j] = z[r * H + j] > 0 ? s : 0;
      grads.b1[j] += dz[j];
    }
    for (let i = 0; i < C; i++) {
      let s = 0;
      for (let j = 0; j < H; j++) {
        grads.w1[i * H + j] += x[r * C + i] * dz[j];
        s += dz[j] * p.w1[i * H + j];
      }
      dx[r * C + i] = s;
    }
  }
  return dx;
}

/**
 * The router's share of the backward for one group: from dg (the loss's gradient w.r.t. each kept
 * assignment's gate, in assignment order) and the aux loss's weight 1/groups, the gradient of the
 * router logits, then dX += dlogits Wr^T and dWr += X^T dlogits (token order).
 */
export function routerBackward(c: MoeConfig, router: Float32Array, x: Float32Array, n: number, routing: GroupRouting, dGate: Float64Array, groups: number, dRouter: Float32Array, dx: Float32Array): void {
  const { width: C, experts: E, topK } = c;
  const { probs, assignments, firstChoiceFraction: f } = routing;
  const dp = new Float64Array(n * E);
  // gates -> probabilities
  for (let t = 0; t < n; t++) {
    const mine = [assignments[t], ...(topK === 2 ? [assignments[n + t]] : [])];
    if (topK === 1) dp[t * E + mine[0].expert] += dGate[t];
    else {
      const S = probs[t * E + mine[0].expert] + probs[t * E + mine[1].expert];
      let weighted = 0;
      for (const a of mine) weighted += dGate[assignments.indexOf(a)] * probs[t * E + a.expert];
      for (const a of mine) dp[t * E + a.expert] += dGate[assignments.indexOf(a)] / S - weighted / (S * S);
    }
  }
  // load-balancing loss: d/dp_{t,e} of alpha * E * sum_e f_e * mean_t p_{t,e}, averaged over groups
  for (let t = 0; t < n; t++) for (let e = 0; e < E; e++) dp[t * E + e] += (c.auxWeight * E * f[e]) / n / groups;
  for (let t = 0; t < n; t++) {
    let dot = 0;
    for (let e = 0; e < E; e++) dot += probs[t * E + e] * dp[t * E + e];
    for (let e = 0; e < E; e++) {
      const dl = Math.fround(probs[t * E + e] * (dp[t * E + e] - dot));
      for (let i = 0; i < C; i++) {
        dRouter[i * E + e] += x[t * C + i] * dl;
        dx[t * C + i] += dl * router[i * E + e];
      }
    }
  }
}

export interface MoeGradients {
  router: Float32Array;
  experts: ExpertParams[];
}

export function zeroMoeGradients(c: MoeConfig, experts = c.experts): MoeGradients {
  return { router: new Float32Array(c.width * c.experts), experts: Array.from({ length: experts }, () => zeroExpert(c)) };
}

export interface MoeStepResult {
  y: Float32Array[];
  auxLoss: number;
  dropped: number;
  /** tokens[g][e]: tokens of group g kept by expert e (the dashboard's heatmap). */
  tokens: number[][];
  dx: Float32Array[];
  grads: MoeGradients;
}

/** The forward of one rank holding all E experts; `backward` takes the output gradients. */
export interface MoeForward {
  /** Per group: [n_g, C]. */
  y: Float32Array[];
  /** The load-balancing loss, mean over groups (alpha included). */
  auxLoss: number;
  dropped: number;
  /** tokens[g][e]: tokens of group g kept by expert e (the dashboard's heatmap). */
  tokens: number[][];
  /** From dys[g] (the task loss's gradient w.r.t. y[g]); the aux loss is added with weight 1. */
  backward(dys: readonly Float32Array[]): { dx: Float32Array[]; grads: MoeGradients };
}

/** One rank holding all E experts: the forward of the groups' tokens (xs[g]: [n_g, C]). */
export function moeForward(c: MoeConfig, params: MoeParams, xs: readonly Float32Array[]): MoeForward {
  checkMoeConfig(c);
  const C = c.width;
  const G = xs.length;
  const routings = xs.map((x) => routeGroup(c, params.router, x, x.length / C));
  const ys = xs.map((x) => new Float32Array(x.length));
  const outputs: (Float32Array | undefined)[][] = routings.map((r) => new Array(r.assignments.length));
  const experts = Array.from({ length: c.experts }, (_, e) => {
    // rows in (group, choice, token) order
    const rows: { g: number; a: number }[] = [];
    routings.forEach((r, g) => r.assignments.forEach((as, a) => as.kept && as.expert === e && rows.push({ g, a })));
    const x = new Float32Array(rows.length * C);
    rows.forEach(({ g, a }, k) => x.set(xs[g].subarray(routings[g].assignments[a].token * C, (routings[g].assignments[a].token + 1) * C), k * C));
    const { y, cache } = expertForward(c, params.experts[e], x, rows.length);
    rows.forEach(({ g, a }, k) => (outputs[g][a] = y.subarray(k * C, (k + 1) * C)));
    return { rows, y, cache };
  });
  routings.forEach((r, g) => combineOutputs(c, r, outputs[g], ys[g]));
  return {
    y: ys,
    auxLoss: routings.reduce((s, r) => s + r.auxLoss, 0) / G,
    dropped: routings.reduce((s, r) => s + r.dropped, 0),
    tokens: routings.map((r) => r.keptPerExpert),
    backward: (dys) => {
      const grads = zeroMoeGradients(c);
      const dxs = xs.map((x) => new Float32Array(x.length));
      const dGates = routings.map((r) => new Float64Array(r.assignments.length));
      const inputGrads: (Float32Array | undefined)[][] = routings.map((r) => new Array(r.assignments.length));
      experts.forEach(({ rows, y, cache }, e) => {
        const dy = new Float32Array(rows.length * C);
        rows.forEach(({ g, a }, k) => {
          const { token, gate } = routings[g].assignments[a];
          let dg = 0;
          for (let i = 0; i < C; i++) {
            dy[k * C + i] = gate * dys[g][token * C + i];
            dg += dys[g][token * C + i] * y[k * C + i];
          }
          dGates[g][a] = dg;
        });
        const dx = expertBackward(c, params.experts[e], cache, dy, grads.experts[e]);
        rows.forEach(({ g, a }, k) => (inputGrads[g][a] = dx.subarray(k * C, (k + 1) * C)));
      });
      routings.forEach((r, g) => {
        combineInputGrads(c, r, inputGrads[g], dxs[g]);
        routerBackward(c, params.router, xs[g], xs[g].length / C, r, dGates[g], G, grads.router, dxs[g]);
      });
      return { dx: dxs, grads };
    },
  };
}

/** moeForward, then its backward from `dys`. */
export function moeReference(c: MoeConfig, params: MoeParams, xs: readonly Float32Array[], dys: readonly Float32Array[]): MoeStepResult {
  const forward = moeForward(c, params, xs);
  const { dx, grads } = forward.backward(dys);
  return { y: forward.y, auxLoss: forward.auxLoss, dropped: forward.dropped, tokens: forward.tokens, dx, grads };
}

/** Y[t] += gate * expert output over the kept assignments in slot order; `outputs[i]` is assignment i's. */
export function combineOutputs(c: MoeConfig, r: GroupRouting, outputs: readonly (Float32Array | undefined)[], y: Float32Array): void {
  const C = c.width;
  r.assignments.forEach((as, i) => {
    if (!as.kept) return;
    const out = outputs[i];
    if (!out) throw new Error(`expert ${as.expert} returned no output for token ${as.token}`);
    for (let q = 0; q < C; q++) y[as.token * C + q] += as.gate * out[q];
  });
}

/** dX[t] += the expert's input gradient over the kept assignments in slot order. */
export function combineInputGrads(c: MoeConfig, r: GroupRouting, grads: readonly (Float32Array | undefined)[], dx: Float32Array): void {
  const C = c.width;
  r.assignments.forEach((as, i) => {
    if (!as.kept) return;
    const g = grads[i];
    if (!g) throw new Error(`expert ${as.expert} returned no input gradient for token ${as.token}`);
    for (let q = 0; q < C; q++) dx[as.token * C + q] += g[q];
  });
}

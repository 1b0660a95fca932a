// TESTS ONLY: what the MoE op tests share on every backend (the CPU reference's and WebGPU's): routing
// views, router logits with clear margins, and one finite-difference check of every MoE op's backward.
import { type Backend, type MoeRouting, type MoeShape, type View, viewOf } from './backend';
import { checkBackward, randomUniform } from './gradcheck';
import { MOE_NONE } from './moe-reference';

export function upload(b: Backend, data: Float32Array | Uint32Array): View {
  const v = viewOf(b.alloc(data.length, 'moe test', 'workspace', data instanceof Uint32Array ? 'u32' : 'f32'));
  b.write(v, data);
  return v;
}

export function routingViews(b: Backend, s: MoeShape): MoeRouting {
  const { tokens: n, experts: E, topk: k, groups: G } = s;
  const u = (length: number) => upload(b, new Uint32Array(length).fill(7));
  const f = (length: number) => upload(b, new Float32Array(length).fill(-3));
  return { probs: f(n * E), choice: u(n * k), slot: u(n * k), gates: f(n * k), slotToken: u(E * s.slotsPerExpert), fractions: f(G * E), aux: f(3) };
}

export const readU32 = async (b: Backend, v: View) => Array.from(new Uint32Array((await b.read(v)).buffer));

/**
 * Router logits whose experts are separated by `gap` (a shuffled ladder 0, gap, 2 gap, ... plus noise
 * under gap / 4), so that a finite-difference step of 1e-2 never changes a token's top-2.
 */
export function ladderLogits(n: number, E: number, seed: number, gap = 0.6): Float32Array {
  const noise = randomUniform(n * E, seed, -gap / 4, gap / 4);
  const order = randomUniform(n * E, seed + 1);
  const out = new Float32Array(n * E);
  for (let t = 0; t < n; t++) {
    const ranks = Array.from({ length: E }, (_, e) => e).sort((a, c) => order[t * E + a] - order[t * E + c]);
    ranks.forEach((e, r) => (out[t * E + e] = r * gap + noise[t * E + e]));
  }
  return out;
}

/**
 * Every MoE op's backward against finite differences in one chain: route the logits, dispatch x,
 * "experts" = one shared linear map W on the slot rows, combine; the loss reads the combined output
 * and the aux loss (dOut[0] is the aux loss's upstream gradient).
 */
const Y_AT = 64;

export async function moeChainMismatches(b: Backend, s: MoeShape, C: number, seed: number) {
  const { tokens: n, experts: E, topk: k, slotsPerExpert: S } = s;
  const rows = E * S;
  const auxWeight = 0.3;
  const r = routingViews(b, s);
  const scratch = (length: number) => upload(b, new Float32Array(length));
  const [disp, eo, dEo, dDisp, dGates] = [scratch(rows * C), scratch(rows * C), scratch(rows * C), scratch(rows * C), scratch(n * k)];
  // out: the aux loss at 0, the combined rows from 64 on (views on WebGPU start at multiples of 64).
  const dOut = randomUniform(Y_AT + n * C, seed + 7);
  dOut[0] = 0.8;
  let dropped = 0;
  const mismatches = await checkBackward(b, {
    inputs: { x: randomUniform(n * C, seed), logits: ladderLogits(n, E, seed + 2), w: randomUniform(C * C, seed + 3) },
    outLength: Y_AT + n * C,
    dOut,
    forward: (bk, v) => {
      const routing = { ...r, aux: viewOf(v.out.buf, v.out.offset, 1) };
      bk.moeRoute(routing, v.logits, s, auxWeight, 0);
      bk.moeDispatch(disp, v.x, r.slotToken, s, C);
      bk.matmul(eo, disp, v.w, rows, C, C);
      bk.moeCombine(viewOf(v.out.buf, v.out.offset + Y_AT, n * C), eo, r.slot, r.gates, s, C);
    },
    backward: (bk, v, g) => {
      const dy = viewOf(v.dOut.buf, v.dOut.offset + Y_AT, n * C);
      bk.moeCombineBackward(dEo, dGates, dy, eo, r.slot, r.slotToken, r.gates, s, C);
      bk.matmul(g.w, disp, dEo, C, rows, C, { transA: true, accumulate: true });
      bk.matmul(dDisp, dEo, v.w, rows, C, C, { transB: true });
      bk.moeDispatchBackward(g.x, dDisp, r.slot, s, C);
      bk.moeRouteBackward(g.logits, dGates, r.probs, r.choice, r.fractions, s, auxWeight, dOut[0]);
    },
    accumulates: ['w'],
  });
  for (const slot of await readU32(b, r.slot)) if (slot === MOE_NONE) dropped++;
  return { mismatches, dropped };
}


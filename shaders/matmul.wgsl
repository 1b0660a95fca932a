// out[M,N] (=|+=) op(a)[M,K] @ op(b)[K,N], row-major. One entry point per transpose combination
// (matmul_<variant>_<nn|nt|tn|tt>) passes constant flags to a shared body, which the compiler
// specialises, so the inner loops carry no branches. (Pipeline-overridable constants did the same
// with less text, but crashed SwiftShader under Dawn for Node when both variants were built.)
// Two variants, chosen per adapter (src/gpu/webgpu-backend.ts):
//  - matmul_blocked: no workgroup memory; each invocation computes a 4x4 block of `out` in registers.
//    Fastest on SwiftShader (a CPU), where workgroup barriers are expensive. When the shapes allow,
//    matmul_blocked_<t>4 loads vec4s instead: 1.8x on 1024^3 there, the same bits; and for NN and TN
//    outputs of at least 8x8, matmul_blocked_<t>8 computes 8x8 blocks with vec4 loads (fewer loads
//    per fma again), the same bits too.
//  - matmul_tiled: 64x64 output tile per 16x16 workgroup, staged through workgroup memory 16 columns
//    of K at a time; each invocation still computes 4x4. What real GPUs want.
// `a` and `b` are only read, but declared read_write: the models multiply views of their activation
// arena into another view of it (forward, input gradients), or two views of it into the gradient
// buffer (weight gradients), and WebGPU refuses a dispatch that binds one buffer both read-only and
// writable.

struct MatmulParams {
  M: u32,
  K: u32,
  N: u32,
  accumulate: u32, // 0: out = a @ b; 1: out += a @ b
}

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> a: array<f32>;
@group(0) @binding(3) var<storage, read_write> b: array<f32>;

fn a_at(ta: bool, i: u32, k: u32) -> f32 {
  if (ta) { return a[k * p.M + i]; }
  return a[i * p.K + k];
}

fn b_at(tb: bool, k: u32, j: u32) -> f32 {
  if (tb) { return b[j * p.K + k]; }
  return b[k * p.N + j];
}

fn store(i: u32, j: u32, value: f32) {
  if (i < p.M && j < p.N) {
    let idx = i * p.N + j;
    if (p.accumulate != 0u) { out[idx] = out[idx] + value; } else { out[idx] = value; }
  }
}

fn store_block(row0: u32, col0: u32, acc: array<vec4f, 4>) {
  for (var r = 0u; r < 4u; r++) {
    let v = acc[r];
    store(row0 + r, col0, v.x);
    store(row0 + r, col0 + 1u, v.y);
    store(row0 + r, col0 + 2u, v.z);
    store(row0 + r, col0 + 3u, v.w);
  }
}

fn blocked(gid: vec3u, ta: bool, tb: bool) {
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  if (row0 >= p.M || col0 >= p.N) { return; }
  // Edge blocks clamp their rows/columns to the last valid one: the inner loop then needs no bounds
  // checks, and the duplicated results are simply not stored.
  let r = min(vec4u(row0, row0 + 1u, row0 + 2u, row0 + 3u), vec4u(p.M - 1u));
  let c = min(vec4u(col0, col0 + 1u, col0 + 2u, col0 + 3u), vec4u(p.N - 1u));
  var acc: array<vec4f, 4>;
  for (var k = 0u; k < p.K; k++) {
    let bv = vec4f(b_at(tb, k, c.x), b_at(tb, k, c.y), b_at(tb, k, c.z), b_at(tb, k, c.w));
    acc[0] = fma(vec4f(a_at(ta, r.x, k)), bv, acc[0]);
    acc[1] = fma(vec4f(a_at(ta, r.y, k)), bv, acc[1]);
    acc[2] = fma(vec4f(a_at(ta, r.z, k)), bv, acc[2]);
    acc[3] = fma(vec4f(a_at(ta, r.w, k)), bv, acc[3]);
  }
  store_block(row0, col0, acc);
}

const TILE: u32 = 64u;
const TILE_K: u32 = 16u;
// Flat workgroup arrays, [k * TILE + row] and [k * TILE + col].
var<workgroup> a_tile: array<f32, 1024>;
var<workgroup> b_tile: array<f32, 1024>;

fn tiled(wg: vec3u, lid: vec3u, ta: bool, tb: bool) {
  let tile_row = wg.y * TILE;
  let tile_col = wg.x * TILE;
  let tid = lid.y * 16u + lid.x;
  let ar = lid.y * 4u;
  let bc = lid.x * 4u;
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var k0 = 0u; k0 < p.K; k0 += TILE_K) {
    // 256 invocations load 64x16 elements of each operand, 4 each; zeros pad the edges.
    for (var l = 0u; l < 4u; l++) {
      let e = tid + l * 256u;
      let am = e / TILE_K;
      let ak = e % TILE_K;
      var av = 0.0;
      if (tile_row + am < p.M && k0 + ak < p.K) { av = a_at(ta, tile_row + am, k0 + ak); }
      a_tile[ak * TILE + am] = av;
      let bk = e / TILE;
      let bn = e % TILE;
      var bv = 0.0;
      if (k0 + bk < p.K && tile_col + bn < p.N) { bv = b_at(tb, k0 + bk, tile_col + bn); }
      b_tile[bk * TILE + bn] = bv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TILE_K; kk++) {
      let bv = vec4f(b_tile[kk * TILE + bc], b_tile[kk * TILE + bc + 1u], b_tile[kk * TILE + bc + 2u], b_tile[kk * TILE + bc + 3u]);
      acc0 = fma(vec4f(a_tile[kk * TILE + ar]), bv, acc0);
      acc1 = fma(vec4f(a_tile[kk * TILE + ar + 1u]), bv, acc1);
      acc2 = fma(vec4f(a_tile[kk * TILE + ar + 2u]), bv, acc2);
      acc3 = fma(vec4f(a_tile[kk * TILE + ar + 3u]), bv, acc3);
    }
    workgroupBarrier();
  }
  store_block(tile_row + ar, tile_col + bc, array<vec4f, 4>(acc0, acc1, acc2, acc3));
}

// The same two operands seen as vec4s, for the matmul_blocked_*4 entry points alone: WGSL lets two
// variables share a binding as long as no entry point uses both.
@group(0) @binding(2) var<storage, read_write> a_vec4: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> b_vec4: array<vec4f>;

// blocked() with vec4 loads where memory lays four of a block's values side by side: 8 vector loads
// per 4 k instead of 32 scalar ones, each of which SwiftShader bounds-checks. The fmas run in the same
// k order, so the results are the same bits. (One generic body for all transpositions, with the loads
// behind helpers and a 4-k inner loop, ran 3x slower on SwiftShader than these unrolled ones.)

// One output row of a block over four k, in k order: acc += ak.x * b0 + ak.y * b1 + ak.z * b2 + ak.w * b3,
// where ak holds the row's four k of `a` and b0..b3 the block's four columns at each of them.
fn fma4(acc: ptr<function, vec4f>, ak: vec4f, b0: vec4f, b1: vec4f, b2: vec4f, b3: vec4f) {
  *acc = fma(vec4f(ak.w), b3, fma(vec4f(ak.z), b2, fma(vec4f(ak.y), b1, fma(vec4f(ak.x), b0, *acc))));
}

// NN, K and N multiples of 4: a row's four k and a k's four columns are each one vec4.
@compute @workgroup_size(8, 8) fn matmul_blocked_nn4(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  if (row0 >= p.M || col0 >= p.N) { return; }
  let k4s = p.K / 4u;
  let n4s = p.N / 4u;
  let c4 = col0 / 4u;
  // Rows past M are clamped to the last one (their results are not stored).
  let r = min(vec4u(row0, row0 + 1u, row0 + 2u, row0 + 3u), vec4u(p.M - 1u)) * k4s;
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var k4 = 0u; k4 < k4s; k4++) {
    let kb = k4 * 4u * n4s + c4;
    let b0 = b_vec4[kb];
    let b1 = b_vec4[kb + n4s];
    let b2 = b_vec4[kb + 2u * n4s];
    let b3 = b_vec4[kb + 3u * n4s];
    fma4(&acc0, a_vec4[r.x + k4], b0, b1, b2, b3);
    fma4(&acc1, a_vec4[r.y + k4], b0, b1, b2, b3);
    fma4(&acc2, a_vec4[r.z + k4], b0, b1, b2, b3);
    fma4(&acc3, a_vec4[r.w + k4], b0, b1, b2, b3);
  }
  store_block(row0, col0, array<vec4f, 4>(acc0, acc1, acc2, acc3));
}

// TN (a weight gradient, a^T @ dz), M and N multiples of 4: a k's four rows of a^T and its four columns
// of b are each one vec4.
@compute @workgroup_size(8, 8) fn matmul_blocked_tn4(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  if (row0 >= p.M || col0 >= p.N) { return; }
  let m4s = p.M / 4u;
  let n4s = p.N / 4u;
  let i4 = row0 / 4u;
  let j4 = col0 / 4u;
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var k = 0u; k < p.K; k++) {
    let av = a_vec4[k * m4s + i4];
    let bv = b_vec4[k * n4s + j4];
    acc0 = fma(vec4f(av.x), bv, acc0);
    acc1 = fma(vec4f(av.y), bv, acc1);
    acc2 = fma(vec4f(av.z), bv, acc2);
    acc3 = fma(vec4f(av.w), bv, acc3);
  }
  store_block(row0, col0, array<vec4f, 4>(acc0, acc1, acc2, acc3));
}

// NT (attention scores, a gradient flowing back through a weight), K a multiple of 4: a row's four k of
// `a` and a column's four k of b^T are each one vec4; each k's four columns are then gathered into one.
@compute @workgroup_size(8, 8) fn matmul_blocked_nt4(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  if (row0 >= p.M || col0 >= p.N) { return; }
  let k4s = p.K / 4u;
  let r = min(vec4u(row0, row0 + 1u, row0 + 2u, row0 + 3u), vec4u(p.M - 1u)) * k4s;
  let c = min(vec4u(col0, col0 + 1u, col0 + 2u, col0 + 3u), vec4u(p.N - 1u)) * k4s;
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var k4 = 0u; k4 < k4s; k4++) {
    let c0 = b_vec4[c.x + k4];
    let c1 = b_vec4[c.y + k4];
    let c2 = b_vec4[c.z + k4];
    let c3 = b_vec4[c.w + k4];
    let b0 = vec4f(c0.x, c1.x, c2.x, c3.x);
    let b1 = vec4f(c0.y, c1.y, c2.y, c3.y);
    let b2 = vec4f(c0.z, c1.z, c2.z, c3.z);
    let b3 = vec4f(c0.w, c1.w, c2.w, c3.w);
    fma4(&acc0, a_vec4[r.x + k4], b0, b1, b2, b3);
    fma4(&acc1, a_vec4[r.y + k4], b0, b1, b2, b3);
    fma4(&acc2, a_vec4[r.z + k4], b0, b1, b2, b3);
    fma4(&acc3, a_vec4[r.w + k4], b0, b1, b2, b3);
  }
  store_block(row0, col0, array<vec4f, 4>(acc0, acc1, acc2, acc3));
}

@compute @workgroup_size(8, 8) fn matmul_blocked_nn(@builtin(global_invocation_id) gid: vec3u) { blocked(gid, false, false); }
@compute @workgroup_size(8, 8) fn matmul_blocked_nt(@builtin(global_invocation_id) gid: vec3u) { blocked(gid, false, true); }
@compute @workgroup_size(8, 8) fn matmul_blocked_tn(@builtin(global_invocation_id) gid: vec3u) { blocked(gid, true, false); }
@compute @workgroup_size(8, 8) fn matmul_blocked_tt(@builtin(global_invocation_id) gid: vec3u) { blocked(gid, true, true); }

@compute @workgroup_size(16, 16) fn matmul_tiled_nn(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) { tiled(wg, lid, false, false); }
@compute @workgroup_size(16, 16) fn matmul_tiled_nt(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) { tiled(wg, lid, false, true); }
@compute @workgroup_size(16, 16) fn matmul_tiled_tn(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) { tiled(wg, lid, true, false); }
@compute @workgroup_size(16, 16) fn matmul_tiled_tt(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) { tiled(wg, lid, true, true); }

// The vec4 kernels with an 8x8 block per invocation instead of 4x4: per four k, 16 vector loads feed 64
// vector fmas (8 loads for 16 at 4x4), and SwiftShader's cost is in the loads, each bounds-checked per
// lane. About 1.2-2x the 4x4 kernels at 256^3-1024^3 there (docs/wgsl-kernels.md). The fmas of each
// output run in the same k order as blocked(), so the results are the same bits. An 8x4 workgroup
// covers 32 rows and 64 columns. Rows and column groups past the edge are clamped to the last one
// (their results are not stored), so the shapes need only what the 4x4 kernels need.

// The block's eight rows, each clamped to the last valid one.
fn clamp_rows8(row0: u32) -> array<u32, 8> {
  let last = p.M - 1u;
  return array<u32, 8>(min(row0, last), min(row0 + 1u, last), min(row0 + 2u, last), min(row0 + 3u, last),
                       min(row0 + 4u, last), min(row0 + 5u, last), min(row0 + 6u, last), min(row0 + 7u, last));
}

fn store_block8(row0: u32, col0: u32, left: array<vec4f, 8>, right: array<vec4f, 8>) {
  store_block(row0, col0, array<vec4f, 4>(left[0], left[1], left[2], left[3]));
  store_block(row0 + 4u, col0, array<vec4f, 4>(left[4], left[5], left[6], left[7]));
  store_block(row0, col0 + 4u, array<vec4f, 4>(right[0], right[1], right[2], right[3]));
  store_block(row0 + 4u, col0 + 4u, array<vec4f, 4>(right[4], right[5], right[6], right[7]));
}

// NN, K and N multiples of 4.
@compute @workgroup_size(8, 4) fn matmul_blocked_nn8(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 8u;
  let col0 = gid.x * 8u;
  if (row0 >= p.M || col0 >= p.N) { return; }
  let k4s = p.K / 4u;
  let n4s = p.N / 4u;
  let c4 = col0 / 4u;
  let c4r = min(c4 + 1u, n4s - 1u) - c4;
  let rows = clamp_rows8(row0);
  var l: array<vec4f, 8>;
  var r: array<vec4f, 8>;
  // Unrolled: SwiftShader keeps a dynamically indexed array in memory, not in registers.
  for (var k4 = 0u; k4 < k4s; k4++) {
    let kb = k4 * 4u * n4s + c4;
    let b0 = b_vec4[kb];
    let b1 = b_vec4[kb + n4s];
    let b2 = b_vec4[kb + 2u * n4s];
    let b3 = b_vec4[kb + 3u * n4s];
    let e0 = b_vec4[kb + c4r];
    let e1 = b_vec4[kb + n4s + c4r];
    let e2 = b_vec4[kb + 2u * n4s + c4r];
    let e3 = b_vec4[kb + 3u * n4s + c4r];
    let a0 = a_vec4[rows[0] * k4s + k4];
    fma4(&l[0], a0, b0, b1, b2, b3);
    fma4(&r[0], a0, e0, e1, e2, e3);
    let a1 = a_vec4[rows[1] * k4s + k4];
    fma4(&l[1], a1, b0, b1, b2, b3);
    fma4(&r[1], a1, e0, e1, e2, e3);
    let a2 = a_vec4[rows[2] * k4s + k4];
    fma4(&l[2], a2, b0, b1, b2, b3);
    fma4(&r[2], a2, e0, e1, e2, e3);
    let a3 = a_vec4[rows[3] * k4s + k4];
    fma4(&l[3], a3, b0, b1, b2, b3);
    fma4(&r[3], a3, e0, e1, e2, e3);
    let a4 = a_vec4[rows[4] * k4s + k4];
    fma4(&l[4], a4, b0, b1, b2, b3);
    fma4(&r[4], a4, e0, e1, e2, e3);
    let a5 = a_vec4[rows[5] * k4s + k4];
    fma4(&l[5], a5, b0, b1, b2, b3);
    fma4(&r[5], a5, e0, e1, e2, e3);
    let a6 = a_vec4[rows[6] * k4s + k4];
    fma4(&l[6], a6, b0, b1, b2, b3);
    fma4(&r[6], a6, e0, e1, e2, e3);
    let a7 = a_vec4[rows[7] * k4s + k4];
    fma4(&l[7], a7, b0, b1, b2, b3);
    fma4(&r[7], a7, e0, e1, e2, e3);
  }
  store_block8(row0, col0, l, r);
}

// TN (a weight gradient), M and N multiples of 4.
@compute @workgroup_size(8, 4) fn matmul_blocked_tn8(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 8u;
  let col0 = gid.x * 8u;
  if (row0 >= p.M || col0 >= p.N) { return; }
  let m4s = p.M / 4u;
  let n4s = p.N / 4u;
  let i4 = row0 / 4u;
  let i4d = min(i4 + 1u, m4s - 1u) - i4;
  let j4 = col0 / 4u;
  let j4r = min(j4 + 1u, n4s - 1u) - j4;
  var l: array<vec4f, 8>;
  var r: array<vec4f, 8>;
  for (var k = 0u; k < p.K; k++) {
    let ka = k * m4s + i4;
    let kb = k * n4s + j4;
    let up = a_vec4[ka];
    let down = a_vec4[ka + i4d];
    let bl = b_vec4[kb];
    let br = b_vec4[kb + j4r];
    l[0] = fma(vec4f(up.x), bl, l[0]);
    l[1] = fma(vec4f(up.y), bl, l[1]);
    l[2] = fma(vec4f(up.z), bl, l[2]);
    l[3] = fma(vec4f(up.w), bl, l[3]);
    l[4] = fma(vec4f(down.x), bl, l[4]);
    l[5] = fma(vec4f(down.y), bl, l[5]);
    l[6] = fma(vec4f(down.z), bl, l[6]);
    l[7] = fma(vec4f(down.w), bl, l[7]);
    r[0] = fma(vec4f(up.x), br, r[0]);
    r[1] = fma(vec4f(up.y), br, r[1]);
    r[2] = fma(vec4f(up.z), br, r[2]);
    r[3] = fma(vec4f(up.w), br, r[3]);
    r[4] = fma(vec4f(down.x), br, r[4]);
    r[5] = fma(vec4f(down.y), br, r[5]);
    r[6] = fma(vec4f(down.z), br, r[6]);
    r[7] = fma(vec4f(down.w), br, r[7]);
  }
  store_block8(row0, col0, l, r);
}

// Multi-head causal self-attention. qkv is [B, T, 3C] (q | k | v), heads of size hs = C / nHead.
// Forward, one invocation per (b, h, t): scores against k[0..t], stable softmax into att[b, h, t, :]
// (zeros above the diagonal), then out[b, t, h] = sum_t2 att * v[t2].
// Backward in two deterministic passes (no atomics):
//  1. attention_backward_scores.wgsl, per (b, h, t): dscore[t2] = att[t2] * (datt[t2] - sum_j att[j]
//     datt[j]) * scale with datt[t2] = dout[t] . v[t2], into a scratch buffer shaped like att.
//  2. backward_qkv (here), per (b, h, t): dq[t] = sum_{t2<=t} dscore[t, t2] k[t2],
//     dk[t] = sum_{t3>=t} dscore[t3, t] q[t3], dv[t] = sum_{t3>=t} att[t3, t] dout[t3].
//     Each invocation writes only its own row of dqkv: every element is written once (overwrite).
// qkv, att and d_out are only read by backward_qkv (qkv by the forward too), but declared read_write:
// the models keep them in the activation arena beside out and d_qkv, and WebGPU refuses a dispatch
// that binds one buffer both read-only and writable. d_scores is the backend's own scratch buffer.

@group(0) @binding(0) var<uniform> p: AttentionParams;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;   // forward
@group(0) @binding(1) var<storage, read_write> d_qkv: array<f32>; // backward_qkv
@group(0) @binding(2) var<storage, read_write> att: array<f32>;   // written by the forward
@group(0) @binding(3) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(4) var<storage, read_write> d_out: array<f32>; // backward_qkv
@group(0) @binding(5) var<storage, read> d_scores: array<f32>;    // backward_qkv

@compute @workgroup_size(64)
fn attention_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = row_of(gid, nwg);
  if (!r.valid) { return; }
  let hs = p.C / p.n_head;
  let q = qkv_at(r.b, r.t, 0u, r.h);
  let row = att_row(r);
  var max_s = -3.0e38;
  for (var t2 = 0u; t2 <= r.t; t2++) {
    let k = qkv_at(r.b, t2, 1u, r.h);
    var dot = 0.0;
    for (var i = 0u; i < hs; i++) { dot += qkv[q + i] * qkv[k + i]; }
    let s = dot * p.scale;
    att[row + t2] = s;
    max_s = max(max_s, s);
  }
  var sum = 0.0;
  for (var t2 = 0u; t2 <= r.t; t2++) {
    let e = exp(att[row + t2] - max_s);
    att[row + t2] = e;
    sum += e;
  }
  let inv = 1.0 / sum;
  for (var t2 = 0u; t2 < p.T; t2++) {
    att[row + t2] = select(0.0, att[row + t2] * inv, t2 <= r.t);
  }
  let o = (r.b * p.T + r.t) * p.C + r.h * hs;
  for (var i = 0u; i < hs; i++) {
    var acc = 0.0;
    for (var t2 = 0u; t2 <= r.t; t2++) { acc += att[row + t2] * qkv[qkv_at(r.b, t2, 2u, r.h) + i]; }
    out[o + i] = acc;
  }
}

@compute @workgroup_size(64)
fn attention_backward_qkv(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = row_of(gid, nwg);
  if (!r.valid) { return; }
  let hs = p.C / p.n_head;
  let bh_rows = (r.b * p.n_head + r.h) * p.T; // first row of this (b, h) in att / d_scores
  let dq = qkv_at(r.b, r.t, 0u, r.h);
  let dk = qkv_at(r.b, r.t, 1u, r.h);
  let dv = qkv_at(r.b, r.t, 2u, r.h);
  for (var i = 0u; i < hs; i++) {
    var gq = 0.0;
    for (var t2 = 0u; t2 <= r.t; t2++) {
      gq += d_scores[(bh_rows + r.t) * p.T + t2] * qkv[qkv_at(r.b, t2, 1u, r.h) + i];
    }
    var gk = 0.0;
    var gv = 0.0;
    for (var t3 = r.t; t3 < p.T; t3++) {
      let cell = (bh_rows + t3) * p.T + r.t;
      gk += d_scores[cell] * qkv[qkv_at(r.b, t3, 0u, r.h) + i];
      gv += att[cell] * d_out[(r.b * p.T + t3) * p.C + r.h * hs + i];
    }
    d_qkv[dq + i] = gq;
    d_qkv[dk + i] = gk;
    d_qkv[dv + i] = gv;
  }
}

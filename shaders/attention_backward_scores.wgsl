// The first pass of attention.wgsl's backward, per (b, h, t): dscore[t2] = att[t2] * (datt[t2] -
// sum_j att[j] datt[j]) * scale with datt[t2] = dout[t] . v[t2], into d_scores, a scratch buffer shaped
// like att that attention_backward_qkv then reads. A file of its own because it binds qkv, att and
// d_out read-only (its output is the backend's scratch buffer, apart from the activations), while
// attention.wgsl must declare them read_write. Its helpers (row_of, qkv_at, att_row) and the uniform
// struct are attention_common.wgsl's, as attention.wgsl's are.

@group(0) @binding(0) var<uniform> p: AttentionParams;
@group(0) @binding(1) var<storage, read_write> d_scores: array<f32>;
@group(0) @binding(2) var<storage, read> d_out: array<f32>;
@group(0) @binding(3) var<storage, read> qkv: array<f32>;
@group(0) @binding(4) var<storage, read> att: array<f32>;

@compute @workgroup_size(64)
fn attention_backward_scores(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = row_of(gid, nwg);
  if (!r.valid) { return; }
  let hs = p.C / p.n_head;
  let row = att_row(r);
  let dout = (r.b * p.T + r.t) * p.C + r.h * hs;
  var weighted = 0.0;
  for (var t2 = 0u; t2 <= r.t; t2++) {
    let v = qkv_at(r.b, t2, 2u, r.h);
    var datt = 0.0;
    for (var i = 0u; i < hs; i++) { datt += d_out[dout + i] * qkv[v + i]; }
    d_scores[row + t2] = datt;
    weighted += att[row + t2] * datt;
  }
  for (var t2 = 0u; t2 < p.T; t2++) {
    d_scores[row + t2] = select(0.0, att[row + t2] * (d_scores[row + t2] - weighted) * p.scale, t2 <= r.t);
  }
}

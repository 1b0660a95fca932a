// Token + position embedding: out[b, t, :] = wte[tokens[b, t], :] + wpe[t, :].
// Backward without float atomics, so it is deterministic: one invocation per (vocab row, channel)
// loops over all B*T tokens and sums the matches; one per (position, channel) sums over the batch.

struct EmbeddingParams {
  B: u32,     // sequences
  T: u32,     // positions per sequence
  C: u32,     // channels
  vocab: u32, // rows of wte
}

@group(0) @binding(0) var<uniform> p: EmbeddingParams;
// forward: out, tokens, wte, wpe
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> tokens: array<u32>;
@group(0) @binding(3) var<storage, read> wte: array<f32>;
@group(0) @binding(4) var<storage, read> wpe: array<f32>;
// backward_wte: d_wte, tokens, d_out; backward_wpe: d_wpe, d_out (both accumulate)
@group(0) @binding(1) var<storage, read_write> d_wte: array<f32>;
@group(0) @binding(1) var<storage, read_write> d_wpe: array<f32>;
@group(0) @binding(5) var<storage, read> d_out: array<f32>;

fn index(wg: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn embedding_forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i >= p.B * p.T * p.C) { return; }
  let bt = i / p.C;
  let c = i % p.C;
  let t = bt % p.T;
  // An out-of-range token would read past wte: clamp it (the CPU twin throws instead).
  let token = min(tokens[bt], p.vocab - 1u);
  out[i] = wte[token * p.C + c] + wpe[t * p.C + c];
}

@compute @workgroup_size(256)
fn embedding_backward_wte(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i >= p.vocab * p.C) { return; }
  let v = i / p.C;
  let c = i % p.C;
  var sum = 0.0;
  for (var bt = 0u; bt < p.B * p.T; bt++) {
    if (tokens[bt] == v) { sum += d_out[bt * p.C + c]; }
  }
  d_wte[i] = d_wte[i] + sum;
}

@compute @workgroup_size(256)
fn embedding_backward_wpe(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i >= p.T * p.C) { return; }
  var sum = 0.0;
  for (var b = 0u; b < p.B; b++) { sum += d_out[b * p.T * p.C + i]; }
  d_wpe[i] = d_wpe[i] + sum;
}

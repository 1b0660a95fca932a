// Token + position embedding: out[b, t, :] = wte[tokens[b, t], :] + wpe[t, :].
// Backward without float atomics, so it is deterministic: one invocation per (vocab row, channel)
// loops over all B*T tokens and sums the matches; one per (position, channel) sums over the batch.

struct Params {
  B: u32,
  T: u32,
  C: u32,
  vocab: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// forward:        out, tokens, wte, wpe
// backward_wte:   dwte, tokens, dout
// backward_wpe:   dwpe, dout
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> b2: array<u32>;
@group(0) @binding(3) var<storage, read_write> b3: array<f32>;
@group(0) @binding(4) var<storage, read_write> b4: array<f32>;

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
  let token = min(b2[bt], p.vocab - 1u);
  b1[i] = b3[token * p.C + c] + b4[t * p.C + c];
}

@compute @workgroup_size(256)
fn embedding_backward_wte(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i >= p.vocab * p.C) { return; }
  let v = i / p.C;
  let c = i % p.C;
  var sum = 0.0;
  for (var bt = 0u; bt < p.B * p.T; bt++) {
    if (b2[bt] == v) { sum += b3[bt * p.C + c]; }
  }
  b1[i] = b1[i] + sum;
}

@compute @workgroup_size(256)
fn embedding_backward_wpe(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i >= p.T * p.C) { return; }
  var sum = 0.0;
  for (var b = 0u; b < p.B; b++) { sum += b3[b * p.T * p.C + i]; }
  b1[i] = b1[i] + sum;
}

// Global-norm gradient clipping that reads the norm on the device (no readback): grads *= max_norm /
// norm when norm = sqrt(sum_sq[0]) exceeds max_norm. sum_sq comes from reduce.wgsl's sum of squares.

struct ClipParams {
  n: u32,
  max_norm: f32,
}

@group(0) @binding(0) var<uniform> p: ClipParams;
@group(0) @binding(1) var<storage, read_write> grads: array<f32>;
@group(0) @binding(2) var<storage, read> sum_sq: array<f32>;

fn index(wg: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn clip_by_norm(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i >= p.n) { return; }
  let norm = sqrt(sum_sq[0]);
  if (norm > p.max_norm) { grads[i] = grads[i] * (p.max_norm / norm); }
}

// Linear-layer bias: out[r, c] = x[r, c] + bias[c], and dBias[c] += sum_r dOut[r, c].
// The backward is one invocation per column looping over rows: deterministic, no atomics.
// x is only read, but declared read_write: the models bind it beside `out` in their activation arena,
// and WebGPU refuses a dispatch that binds one buffer both read-only and writable.

struct BiasParams {
  rows: u32,
  cols: u32,
}

@group(0) @binding(0) var<uniform> p: BiasParams;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(1) var<storage, read_write> d_bias: array<f32>; // bias_backward: accumulated
@group(0) @binding(2) var<storage, read> d_out: array<f32>;        // bias_backward

fn index(wg: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn bias_add(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i < p.rows * p.cols) { out[i] = x[i] + bias[i % p.cols]; }
}

// out aliases x (WebGPU forbids binding one range twice when one binding is writable).
@compute @workgroup_size(256)
fn bias_add_in_place(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i < p.rows * p.cols) { out[i] = out[i] + bias[i % p.cols]; }
}

@compute @workgroup_size(64)
fn bias_backward(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= p.cols) { return; }
  var sum = 0.0;
  for (var r = 0u; r < p.rows; r++) { sum += d_out[r * p.cols + c]; }
  d_bias[c] = d_bias[c] + sum;
}

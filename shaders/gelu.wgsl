// GELU, tanh approximation (GPT-2's), and its backward. The *_in_place entries serve out == x and dx == dy
// (one range cannot be bound twice when a binding is writable).

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> dy: array<f32>;

const GELU_SCALE: f32 = 0.7978845608028654; // sqrt(2 / pi)

// tanh of the clamped argument: some tanh implementations return NaN for large |u| (exp overflow),
// and tanh(15) is already 1 in f32.
fn inner_tanh(x: f32) -> f32 {
  return tanh(clamp(GELU_SCALE * (x + 0.044715 * x * x * x), -15.0, 15.0));
}

fn gelu_value(x: f32) -> f32 {
  return 0.5 * x * (1.0 + inner_tanh(x));
}

fn gelu_slope(x: f32) -> f32 {
  let th = inner_tanh(x);
  return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * GELU_SCALE * (1.0 + 3.0 * 0.044715 * x * x);
}

fn index(wg: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn gelu(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i < p.n) { out[i] = gelu_value(x[i]); }
}

@compute @workgroup_size(256)
fn gelu_in_place(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i < p.n) { out[i] = gelu_value(out[i]); }
}

@compute @workgroup_size(256)
fn gelu_backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i < p.n) { out[i] = gelu_slope(x[i]) * dy[i]; }
}

// out holds dy on entry and dx on exit.
@compute @workgroup_size(256)
fn gelu_backward_in_place(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i < p.n) { out[i] = gelu_slope(x[i]) * out[i]; }
}

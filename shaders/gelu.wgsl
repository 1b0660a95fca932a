// GELU, tanh approximation (GPT-2's), and its backward. The *_in_place entries serve out == x and dx == dy
// (one range cannot be bound twice when a binding is writable).
// x and dy are only read, but declared read_write: the models bind them beside the output in their
// activation arena, and WebGPU refuses a dispatch that binds one buffer both read-only and writable.

struct GeluParams {
  n: u32,
}

@group(0) @binding(0) var<uniform> p: GeluParams;
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // *_in_place: holds x before
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;  // *_backward_in_place: holds dy before
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> dy: array<f32>;

const GELU_SCALE: f32 = 0.7978845608028654; // sqrt(2 / pi)

// The helpers take z, not x: a parameter named like the binding would hide it (and wgsl_reflect,
// which kernel-layouts.test.ts uses, would count the binding as used).

// tanh of the clamped argument: some tanh implementations return NaN for large |u| (exp overflow),
// and tanh(15) is already 1 in f32.
fn inner_tanh(z: f32) -> f32 {
  return tanh(clamp(GELU_SCALE * (z + 0.044715 * z * z * z), -15.0, 15.0));
}

fn gelu_value(z: f32) -> f32 {
  return 0.5 * z * (1.0 + inner_tanh(z));
}

fn gelu_slope(z: f32) -> f32 {
  let th = inner_tanh(z);
  return 0.5 * (1.0 + th) + 0.5 * z * (1.0 - th * th) * GELU_SCALE * (1.0 + 3.0 * 0.044715 * z * z);
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
  if (i < p.n) { dx[i] = gelu_slope(x[i]) * dy[i]; }
}

// dx holds dy on entry.
@compute @workgroup_size(256)
fn gelu_backward_in_place(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i < p.n) { dx[i] = gelu_slope(x[i]) * dx[i]; }
}

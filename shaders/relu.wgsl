// ReLU and its backward: dx = dy * (x > 0). The *_in_place entries serve out == x and dx == dy
// (one range cannot be bound twice when a binding is writable).
// x and dy are only read, but declared read_write: the models bind them beside the output in their
// activation arena, and WebGPU refuses a dispatch that binds one buffer both read-only and writable.

struct ReluParams {
  n: u32,
}

@group(0) @binding(0) var<uniform> p: ReluParams;
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // *_in_place: holds x before
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;  // *_backward_in_place: holds dy before
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> dy: array<f32>;

fn index(wg: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn relu(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i < p.n) { out[i] = max(x[i], 0.0); }
}

@compute @workgroup_size(256)
fn relu_in_place(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i < p.n) { out[i] = max(out[i], 0.0); }
}

@compute @workgroup_size(256)
fn relu_backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i < p.n) { dx[i] = select(0.0, dy[i], x[i] > 0.0); }
}

// dx holds dy on entry.
@compute @workgroup_size(256)
fn relu_backward_in_place(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i < p.n) { dx[i] = select(0.0, dx[i], x[i] > 0.0); }
}

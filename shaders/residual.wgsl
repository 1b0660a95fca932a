// Elementwise basics: residual add (and its in-place form, also gradient accumulation) and scale.
// One invocation per element; the index spans a 2-D dispatch so that more than 65535 * 256 elements
// fit (maxComputeWorkgroupsPerDimension).
// a and b are only read, but declared read_write: the models add views of their activation arena
// into another view of it, and WebGPU refuses a dispatch that binds one buffer both read-only and
// writable.

struct AddParams {
  n: u32,
}

struct ScaleParams {
  n: u32,
  factor: f32,
}

@group(0) @binding(0) var<uniform> add_params: AddParams;
@group(0) @binding(0) var<uniform> scale_params: ScaleParams;
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // add_in_place: holds out + a after
@group(0) @binding(1) var<storage, read_write> x: array<f32>;   // scale: scaled in place
@group(0) @binding(2) var<storage, read_write> a: array<f32>;
@group(0) @binding(3) var<storage, read_write> b: array<f32>;

fn index(wg: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn add(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i < add_params.n) { out[i] = a[i] + b[i]; }
}

@compute @workgroup_size(256)
fn add_in_place(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i < add_params.n) { out[i] = out[i] + a[i]; }
}

@compute @workgroup_size(256)
fn scale(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i < scale_params.n) { x[i] = x[i] * scale_params.factor; }
}

// fill and copy move raw 32-bit words (array<u32>), so that u32 buffers (tokens, targets) and f32
// buffers are handled alike and no float path can flush a small integer's bit pattern as a denormal.

struct Params {
  n: u32,
  bits: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read_write> src: array<u32>;

fn index(wg: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i < p.n) { out[i] = p.bits; }
}

@compute @workgroup_size(256)
fn copy(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i < p.n) { out[i] = src[i]; }
}

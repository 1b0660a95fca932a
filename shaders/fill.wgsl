// fill and copy move raw 32-bit words (array<u32>), so that u32 buffers (tokens, targets) and f32
// buffers are handled alike and no float path can flush a small integer's bit pattern as a denormal.

// The backend uses `copy` only within one buffer (between buffers a copy command needs no kernel), so
// src, although only read, is declared read_write: WebGPU refuses a dispatch that binds one buffer
// both read-only and writable.

struct FillParams {
  n: u32,
  value_bits: u32, // the value's 32 bits (an f32's bit pattern, or a u32)
}

struct CopyParams {
  n: u32,
}

@group(0) @binding(0) var<uniform> fill_params: FillParams;
@group(0) @binding(0) var<uniform> copy_params: CopyParams;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read_write> src: array<u32>;

fn index(wg: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i < fill_params.n) { out[i] = fill_params.value_bits; }
}

@compute @workgroup_size(256)
fn copy(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i < copy_params.n) { out[i] = src[i]; }
}

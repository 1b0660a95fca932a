// partial[0] = sum(x^2), in one workgroup: each invocation sums a strided slice, then a tree
// reduction in workgroup memory. A fixed order of additions: the result is deterministic.

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

var<workgroup> sums: array<f32, 256>;

@compute @workgroup_size(256)
fn sum_squares(@builtin(local_invocation_id) lid: vec3u) {
  var acc = 0.0;
  for (var i = lid.x; i < p.n; i += 256u) { acc += x[i] * x[i]; }
  sums[lid.x] = acc;
  for (var stride = 128u; stride > 0u; stride >>= 1u) {
    workgroupBarrier();
    if (lid.x < stride) { sums[lid.x] += sums[lid.x + stride]; }
  }
  if (lid.x == 0u) { partial[0] = sums[0]; }
}

// The parameter gradients of layernorm.wgsl's layer norm: dgamma[c] += sum_r (x - mean) * rstd * dy,
// dbeta[c] += sum_r dy, one invocation per column looping over rows, so the sums are deterministic
// (no atomics). A file of its own because this kernel binds x, dy, mean and rstd read-only: its
// outputs live in the gradient buffer, apart from the activations, while layernorm.wgsl must declare
// them read_write.

struct LayerNormParams {
  rows: u32,
  cols: u32,
}

@group(0) @binding(0) var<uniform> p: LayerNormParams;
@group(0) @binding(1) var<storage, read_write> d_gamma: array<f32>;
@group(0) @binding(2) var<storage, read_write> d_beta: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read> x: array<f32>;
@group(0) @binding(5) var<storage, read> mean: array<f32>;
@group(0) @binding(6) var<storage, read> rstd: array<f32>;

@compute @workgroup_size(64)
fn layernorm_backward_params(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= p.cols) { return; }
  var dgamma = 0.0;
  var dbeta = 0.0;
  for (var r = 0u; r < p.rows; r++) {
    let g = dy[r * p.cols + c];
    dgamma += (x[r * p.cols + c] - mean[r]) * rstd[r] * g;
    dbeta += g;
  }
  d_gamma[c] = d_gamma[c] + dgamma;
  d_beta[c] = d_beta[c] + dbeta;
}

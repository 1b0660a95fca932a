// Layer norm over the last dimension (eps = 1e-5, biased variance, as PyTorch and llm.c): the forward
// and the dx part of the backward, one invocation per row. The parameter gradients, one invocation per
// column, are in layernorm_backward_params.wgsl.
// x, dy, and the saved mean and rstd are only read by backward_dx, but declared read_write: the models
// keep them in the activation arena beside out and dx, and WebGPU refuses a dispatch that binds one
// buffer both read-only and writable.

struct LayerNormParams {
  rows: u32,
  cols: u32,
}

const EPS: f32 = 1e-5;

@group(0) @binding(0) var<uniform> p: LayerNormParams;
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // forward
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;  // backward_dx
@group(0) @binding(2) var<storage, read_write> mean: array<f32>; // written by the forward, per row
@group(0) @binding(3) var<storage, read_write> rstd: array<f32>; // written by the forward, per row
@group(0) @binding(4) var<storage, read_write> x: array<f32>;
@group(0) @binding(5) var<storage, read> gamma: array<f32>;
@group(0) @binding(6) var<storage, read> beta: array<f32>;       // forward
@group(0) @binding(6) var<storage, read_write> dy: array<f32>;   // backward_dx

fn row_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.y * nwg.x * 64u + gid.x;
}

@compute @workgroup_size(64)
fn layernorm_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = row_index(gid, nwg);
  if (r >= p.rows) { return; }
  let row = r * p.cols;
  let n = f32(p.cols);
  var row_mean = 0.0;
  for (var c = 0u; c < p.cols; c++) { row_mean += x[row + c]; }
  row_mean /= n;
  var variance = 0.0;
  for (var c = 0u; c < p.cols; c++) {
    let d = x[row + c] - row_mean;
    variance += d * d;
  }
  let row_rstd = inverseSqrt(variance / n + EPS);
  for (var c = 0u; c < p.cols; c++) {
    out[row + c] = (x[row + c] - row_mean) * row_rstd * gamma[c] + beta[c];
  }
  mean[r] = row_mean;
  rstd[r] = row_rstd;
}

// dx = rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)), dnorm = dy * gamma.
@compute @workgroup_size(64)
fn layernorm_backward_dx(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = row_index(gid, nwg);
  if (r >= p.rows) { return; }
  let row = r * p.cols;
  let row_mean = mean[r];
  let row_rstd = rstd[r];
  var mean_dnorm = 0.0;
  var mean_dnorm_norm = 0.0;
  for (var c = 0u; c < p.cols; c++) {
    let dnorm = dy[row + c] * gamma[c];
    mean_dnorm += dnorm;
    mean_dnorm_norm += dnorm * (x[row + c] - row_mean) * row_rstd;
  }
  mean_dnorm /= f32(p.cols);
  mean_dnorm_norm /= f32(p.cols);
  for (var c = 0u; c < p.cols; c++) {
    let norm = (x[row + c] - row_mean) * row_rstd;
    dx[row + c] = row_rstd * (dy[row + c] * gamma[c] - mean_dnorm - norm * mean_dnorm_norm);
  }
}

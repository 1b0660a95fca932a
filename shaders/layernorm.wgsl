// Layer norm over the last dimension (eps = 1e-5, biased variance, as PyTorch and llm.c).
// Forward and the dx part of the backward: one invocation per row. dGamma/dBeta: one invocation per
// column looping over rows, so the parameter-gradient sums are deterministic (no atomics).

struct Params {
  rows: u32,
  cols: u32,
}

const EPS: f32 = 1e-5;

@group(0) @binding(0) var<uniform> p: Params;
// forward:            out, mean, rstd, x, gamma, beta
// backward_dx:        dx, dy, x, mean, rstd, gamma
// backward_params:    dgamma, dbeta, dy, x, mean, rstd
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> b2: array<f32>;
@group(0) @binding(3) var<storage, read_write> b3: array<f32>;
@group(0) @binding(4) var<storage, read_write> b4: array<f32>;
@group(0) @binding(5) var<storage, read_write> b5: array<f32>;
@group(0) @binding(6) var<storage, read_write> b6: array<f32>;

fn row_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.y * nwg.x * 64u + gid.x;
}

@compute @workgroup_size(64)
fn layernorm_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = row_index(gid, nwg);
  if (r >= p.rows) { return; }
  let row = r * p.cols;
  let n = f32(p.cols);
  var mean = 0.0;
  for (var c = 0u; c < p.cols; c++) { mean += b4[row + c]; }
  mean /= n;
  var variance = 0.0;
  for (var c = 0u; c < p.cols; c++) {
    let d = b4[row + c] - mean;
    variance += d * d;
  }
  let rstd = inverseSqrt(variance / n + EPS);
  for (var c = 0u; c < p.cols; c++) {
    b1[row + c] = (b4[row + c] - mean) * rstd * b5[c] + b6[c];
  }
  b2[r] = mean;
  b3[r] = rstd;
}

// dx = rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)), dnorm = dy * gamma.
@compute @workgroup_size(64)
fn layernorm_backward_dx(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = row_index(gid, nwg);
  if (r >= p.rows) { return; }
  let row = r * p.cols;
  let mean = b4[r];
  let rstd = b5[r];
  var mean_dnorm = 0.0;
  var mean_dnorm_norm = 0.0;
  for (var c = 0u; c < p.cols; c++) {
    let dnorm = b2[row + c] * b6[c];
    mean_dnorm += dnorm;
    mean_dnorm_norm += dnorm * (b3[row + c] - mean) * rstd;
  }
  mean_dnorm /= f32(p.cols);
  mean_dnorm_norm /= f32(p.cols);
  for (var c = 0u; c < p.cols; c++) {
    let norm = (b3[row + c] - mean) * rstd;
    b1[row + c] = rstd * (b2[row + c] * b6[c] - mean_dnorm - norm * mean_dnorm_norm);
  }
}

@compute @workgroup_size(64)
fn layernorm_backward_params(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= p.cols) { return; }
  var dgamma = 0.0;
  var dbeta = 0.0;
  for (var r = 0u; r < p.rows; r++) {
    let dy = b3[r * p.cols + c];
    dgamma += (b4[r * p.cols + c] - b5[r]) * b6[r] * dy;
    dbeta += dy;
  }
  b1[c] = b1[c] + dgamma;
  b2[c] = b2[c] + dbeta;
}

// Fused, numerically stable softmax + cross-entropy, forward and backward in one pass per row:
// losses[r] = log(sum exp(z - max)) - (z[t] - max); probs = softmax(z);
// dLogits = (probs - onehot(t)) * gradScale. One invocation per row (rows are short: vocab or classes).
// logits are only read, but declared read_write: the models keep them in the activation arena beside
// probs and d_logits, and WebGPU refuses a dispatch that binds one buffer both read-only and writable.

struct SoftmaxCrossEntropyParams {
  rows: u32,
  cols: u32,
  grad_scale: f32,
}

@group(0) @binding(0) var<uniform> p: SoftmaxCrossEntropyParams;
@group(0) @binding(1) var<storage, read_write> losses: array<f32>;
@group(0) @binding(2) var<storage, read_write> probs: array<f32>;
@group(0) @binding(3) var<storage, read_write> d_logits: array<f32>;
@group(0) @binding(4) var<storage, read_write> logits: array<f32>;
@group(0) @binding(5) var<storage, read> targets: array<u32>;

@compute @workgroup_size(64)
fn softmax_cross_entropy(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.y * nwg.x * 64u + gid.x;
  if (r >= p.rows) { return; }
  let row = r * p.cols;
  let tgt = targets[r];
  var max_z = logits[row];
  for (var c = 1u; c < p.cols; c++) { max_z = max(max_z, logits[row + c]); }
  var sum = 0.0;
  for (var c = 0u; c < p.cols; c++) { sum += exp(logits[row + c] - max_z); }
  if (tgt < p.cols) {
    losses[r] = log(sum) - (logits[row + tgt] - max_z);
  } else {
    // A target outside the classes cannot throw here: make the loss NaN so that it shows.
    losses[r] = bitcast<f32>(0x7fc00000u | (tgt & 0u)); // runtime value: a constant NaN is a compile error
  }
  let inv = 1.0 / sum;
  for (var c = 0u; c < p.cols; c++) {
    let prob = exp(logits[row + c] - max_z) * inv;
    probs[row + c] = prob;
    d_logits[row + c] = (prob - select(0.0, 1.0, c == tgt)) * p.grad_scale;
  }
}

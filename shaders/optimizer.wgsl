// Updates on flat ranges (ZeRO updates one slice): global-norm clipping that reads the norm on the
// device (no readback), PyTorch's SGD with momentum, and decoupled AdamW with bias correction.

struct Params {
  n: u32,
  lr: f32,
  beta1: f32,      // sgd: momentum
  beta2: f32,
  eps: f32,
  weight_decay: f32,
  correction1: f32, // 1 - beta1^step, computed on the host in float64
  correction2: f32, // 1 - beta2^step
  max_norm: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
// clip: g, sum_sq   sgd: params, grads, momentum   adamw: params, grads, m, v
@group(0) @binding(1) var<storage, read_write> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> b2: array<f32>;
@group(0) @binding(3) var<storage, read_write> b3: array<f32>;
@group(0) @binding(4) var<storage, read_write> b4: array<f32>;

fn index(wg: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn clip_by_norm(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i >= p.n) { return; }
  let norm = sqrt(b2[0]);
  if (norm > p.max_norm) { b1[i] = b1[i] * (p.max_norm / norm); }
}

@compute @workgroup_size(256)
fn sgd(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i >= p.n) { return; }
  let buf = p.beta1 * b3[i] + (b2[i] + p.weight_decay * b1[i]);
  b3[i] = buf;
  b1[i] = b1[i] - p.lr * buf;
}

@compute @workgroup_size(256)
fn adamw(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  if (i >= p.n) { return; }
  let g = b2[i];
  let m = p.beta1 * b3[i] + (1.0 - p.beta1) * g;
  let v = p.beta2 * b4[i] + (1.0 - p.beta2) * g * g;
  b3[i] = m;
  b4[i] = v;
  let m_hat = m / p.correction1;
  let v_hat = v / p.correction2;
  b1[i] = b1[i] - p.lr * (m_hat / (sqrt(v_hat) + p.eps) + p.weight_decay * b1[i]);
}

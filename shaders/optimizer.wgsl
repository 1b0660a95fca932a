// Parameter updates on flat ranges (ZeRO updates one slice): PyTorch's SGD with momentum, and
// decoupled AdamW with bias correction. Each kernel has its own uniform struct; the gradients are
// read-only (they live in their own buffer, apart from the parameters and the optimizer state).

struct SgdParams {
  n: u32,
  lr: f32,
  momentum: f32,
  weight_decay: f32,
}

struct AdamWParams {
  n: u32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  weight_decay: f32,
  correction1: f32, // 1 - beta1^step, computed on the host in float64
  correction2: f32, // 1 - beta2^step
}

@group(0) @binding(0) var<uniform> sgd_params: SgdParams;
@group(0) @binding(0) var<uniform> adamw_params: AdamWParams;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> momentum: array<f32>; // sgd: the momentum buffer
@group(0) @binding(3) var<storage, read_write> m: array<f32>; // adamw: first moment
@group(0) @binding(4) var<storage, read_write> v: array<f32>; // adamw: second moment

fn index(wg: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn sgd(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  let p = sgd_params;
  if (i >= p.n) { return; }
  let buf = p.momentum * momentum[i] + (grads[i] + p.weight_decay * params[i]);
  momentum[i] = buf;
  params[i] = params[i] - p.lr * buf;
}

@compute @workgroup_size(256)
fn adamw(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  let p = adamw_params;
  if (i >= p.n) { return; }
  let g = grads[i];
  let m_new = p.beta1 * m[i] + (1.0 - p.beta1) * g;
  let v_new = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
  m[i] = m_new;
  v[i] = v_new;
  let m_hat = m_new / p.correction1;
  let v_hat = v_new / p.correction2;
  params[i] = params[i] - p.lr * (m_hat / (sqrt(v_hat) + p.eps) + p.weight_decay * params[i]);
}

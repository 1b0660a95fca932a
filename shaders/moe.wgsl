// Mixture-of-experts routing, dispatch and combine, forward and backward (Switch / GShard). The CPU
// twins and the exact semantics are in src/engine/moe-reference.ts; the ops' views are bound read_write
// throughout because the routing's u32 views share one buffer with each other (WebGPU refuses a buffer
// bound both read-only and read_write in one dispatch).
// Slot buffers hold expert e's rows at [e * slots_per_expert, ...); an empty slot or dropped assignment
// is NONE. Every kernel is deterministic (no atomics): the capacity scan is one invocation per (group,
// expert) walking its group's tokens in order.

struct MoeParams {
  tokens: u32,
  experts: u32,
  topk: u32,
  groups: u32,
  capacity: u32,
  slots_per_expert: u32,
  channels: u32,
  aux_index: u32,
  aux_weight: f32,
  aux_scale: f32,
}

const NONE = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: MoeParams;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> probs: array<f32>;
@group(0) @binding(3) var<storage, read_write> choice: array<u32>;
@group(0) @binding(4) var<storage, read_write> gates: array<f32>;
@group(0) @binding(5) var<storage, read_write> slot: array<u32>;
@group(0) @binding(6) var<storage, read_write> slot_token: array<u32>;
@group(0) @binding(7) var<storage, read_write> fractions: array<f32>;
@group(0) @binding(8) var<storage, read_write> aux: array<f32>;
@group(0) @binding(9) var<storage, read_write> out: array<f32>;
@group(0) @binding(10) var<storage, read_write> x: array<f32>;
@group(0) @binding(11) var<storage, read_write> dx: array<f32>;
@group(0) @binding(12) var<storage, read_write> d_out: array<f32>;
@group(0) @binding(13) var<storage, read_write> y: array<f32>;
@group(0) @binding(14) var<storage, read_write> expert_out: array<f32>;
@group(0) @binding(15) var<storage, read_write> d_expert_out: array<f32>;
@group(0) @binding(16) var<storage, read_write> dy: array<f32>;
@group(0) @binding(17) var<storage, read_write> d_gates: array<f32>;
@group(0) @binding(18) var<storage, read_write> d_logits: array<f32>;

fn index(wg: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wg.y * nwg.x + wg.x) * 64u + lid.x;
}

// One invocation per token: softmax, top-k on the logits (ties to the lower index), gates.
@compute @workgroup_size(64)
fn moe_route_tokens(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let t = index(wg, nwg, lid);
  if (t >= p.tokens) { return; }
  let E = p.experts;
  let row = t * E;
  var mx = logits[row];
  for (var e = 1u; e < E; e++) { mx = max(mx, logits[row + e]); }
  var sum = 0.0;
  for (var e = 0u; e < E; e++) { sum += exp(logits[row + e] - mx); }
  for (var e = 0u; e < E; e++) { probs[row + e] = exp(logits[row + e] - mx) / sum; }
  var first = 0u;
  for (var e = 1u; e < E; e++) { if (logits[row + e] > logits[row + first]) { first = e; } }
  let k = p.topk;
  choice[t * k] = first;
  if (k == 1u) {
    gates[t] = probs[row + first];
    return;
  }
  var second = select(0u, 1u, first == 0u);
  for (var e = 0u; e < E; e++) { if (e != first && logits[row + e] > logits[row + second]) { second = e; } }
  choice[t * k + 1u] = second;
  let p1 = probs[row + first];
  let p2 = probs[row + second];
  gates[t * k] = p1 / (p1 + p2);
  gates[t * k + 1u] = p2 / (p1 + p2);
}

// One invocation per (group, expert): fills the expert's slots of the group, first choices in token
// order, then second choices; counts first choices for the load-balancing loss.
@compute @workgroup_size(64)
fn moe_route_slots(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  let E = p.experts;
  if (i >= p.groups * E) { return; }
  let g = i / E;
  let e = i % E;
  let per_group = p.tokens / p.groups;
  let cap = p.capacity;
  let base = e * p.slots_per_expert + g * cap;
  for (var j = 0u; j < cap; j++) { slot_token[base + j] = NONE; }
  if (g == 0u) {
    for (var j = p.groups * cap; j < p.slots_per_expert; j++) { slot_token[e * p.slots_per_expert + j] = NONE; }
  }
  let k = p.topk;
  var used = 0u;
  var firsts = 0u;
  for (var c = 0u; c < k; c++) {
    for (var t = g * per_group; t < (g + 1u) * per_group; t++) {
      let a = t * k + c;
      if (choice[a] != e) { continue; }
      if (c == 0u) { firsts++; }
      if (used < cap) {
        slot[a] = base + used;
        slot_token[base + used] = a;
        used++;
      } else {
        slot[a] = NONE;
      }
    }
  }
  fractions[i] = f32(firsts) / f32(per_group);
}

// One invocation: aux[aux_index] = aux_weight * E * mean over groups of sum_e f[g, e] * P[g, e].
@compute @workgroup_size(1)
fn moe_route_aux() {
  let E = p.experts;
  let per_group = p.tokens / p.groups;
  var total = 0.0;
  for (var g = 0u; g < p.groups; g++) {
    for (var e = 0u; e < E; e++) {
      var mean = 0.0;
      for (var t = g * per_group; t < (g + 1u) * per_group; t++) { mean += probs[t * E + e]; }
      total += fractions[g * E + e] * (mean / f32(per_group));
    }
  }
  aux[p.aux_index] = p.aux_weight * f32(E) * total / f32(p.groups);
}

// One invocation per (slot row, channel).
@compute @workgroup_size(64)
fn moe_dispatch(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  let C = p.channels;
  if (i >= p.experts * p.slots_per_expert * C) { return; }
  let a = slot_token[i / C];
  if (a == NONE) {
    out[i] = 0.0;
  } else {
    out[i] = x[(a / p.topk) * C + i % C];
  }
}

// One invocation per (token, channel): the sum over the token's kept slots.
@compute @workgroup_size(64)
fn moe_dispatch_backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  let C = p.channels;
  if (i >= p.tokens * C) { return; }
  let t = i / C;
  var sum = 0.0;
  for (var j = 0u; j < p.topk; j++) {
    let row = slot[t * p.topk + j];
    if (row != NONE) { sum += d_out[row * C + i % C]; }
  }
  dx[i] = sum;
}

// One invocation per (token, channel).
@compute @workgroup_size(64)
fn moe_combine(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  let C = p.channels;
  if (i >= p.tokens * C) { return; }
  let t = i / C;
  var sum = 0.0;
  for (var j = 0u; j < p.topk; j++) {
    let row = slot[t * p.topk + j];
    if (row != NONE) { sum += gates[t * p.topk + j] * expert_out[row * C + i % C]; }
  }
  y[i] = sum;
}

// One invocation per (slot row, channel): the gated output gradient of the slot's token.
@compute @workgroup_size(64)
fn moe_combine_backward_rows(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = index(wg, nwg, lid);
  let C = p.channels;
  if (i >= p.experts * p.slots_per_expert * C) { return; }
  let a = slot_token[i / C];
  if (a == NONE) {
    d_expert_out[i] = 0.0;
  } else {
    d_expert_out[i] = gates[a] * dy[(a / p.topk) * C + i % C];
  }
}

// One invocation per assignment: the gate's gradient, dy . expert output (zero when dropped).
@compute @workgroup_size(64)
fn moe_combine_backward_gates(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let a = index(wg, nwg, lid);
  if (a >= p.tokens * p.topk) { return; }
  let C = p.channels;
  let row = slot[a];
  var dot = 0.0;
  if (row != NONE) {
    let t = a / p.topk;
    for (var c = 0u; c < C; c++) { dot += dy[t * C + c] * expert_out[row * C + c]; }
  }
  d_gates[a] = dot;
}

// The probability gradient of expert e for token t: the load-balancing loss's, plus the gates'.
fn prob_grad(t: u32, e: u32, aux_per_prob: f32, g: u32) -> f32 {
  let E = p.experts;
  let k = p.topk;
  var dp = aux_per_prob * fractions[g * E + e];
  let e1 = choice[t * k];
  if (k == 1u) {
    if (e == e1) { dp += d_gates[t]; }
    return dp;
  }
  let e2 = choice[t * k + 1u];
  let p1 = probs[t * E + e1];
  let p2 = probs[t * E + e2];
  let dg1 = d_gates[t * k];
  let dg2 = d_gates[t * k + 1u];
  let s2 = (p1 + p2) * (p1 + p2);
  if (e == e1) { dp += p2 * (dg1 - dg2) / s2; }
  if (e == e2) { dp += p1 * (dg2 - dg1) / s2; }
  return dp;
}

// One invocation per token: through the gate formula and the softmax to the logits.
@compute @workgroup_size(64)
fn moe_route_backward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let t = index(wg, nwg, lid);
  if (t >= p.tokens) { return; }
  let E = p.experts;
  let per_group = p.tokens / p.groups;
  let g = t / per_group;
  let aux_per_prob = p.aux_scale * p.aux_weight * f32(E) / (f32(p.groups) * f32(per_group));
  var dot = 0.0;
  for (var e = 0u; e < E; e++) { dot += probs[t * E + e] * prob_grad(t, e, aux_per_prob, g); }
  for (var e = 0u; e < E; e++) {
    d_logits[t * E + e] = probs[t * E + e] * (prob_grad(t, e, aux_per_prob, g) - dot);
  }
}

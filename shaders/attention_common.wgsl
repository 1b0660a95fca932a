// What attention.wgsl and attention_backward_scores.wgsl share: the uniform struct, the row an
// invocation owns and the offsets into qkv and att. WGSL has no imports, so src/gpu/kernels.ts puts
// this text in front of each of the two files; each declares its own bindings, the uniform `p` included
// (WGSL resolves module-scope names in any order).

struct AttentionParams {
  B: u32,
  T: u32,
  C: u32,
  n_head: u32,
  scale: f32, // 1 / sqrt(hs)
}

struct Row {
  b: u32,
  h: u32,
  t: u32,
  valid: bool,
}

fn row_of(gid: vec3u, nwg: vec3u) -> Row {
  let i = gid.y * nwg.x * 64u + gid.x;
  let t = i % p.T;
  let bh = i / p.T;
  return Row(bh / p.n_head, bh % p.n_head, t, i < p.B * p.n_head * p.T);
}

// Offset of element 0 of head h of part (0 q, 1 k, 2 v) of token (b, t) in qkv.
fn qkv_at(b: u32, t: u32, part: u32, h: u32) -> u32 {
  let hs = p.C / p.n_head;
  return (b * p.T + t) * 3u * p.C + part * p.C + h * hs;
}

fn att_row(r: Row) -> u32 {
  return ((r.b * p.n_head + r.h) * p.T + r.t) * p.T;
}

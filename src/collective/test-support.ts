// Test-only: runs schedules of all ranks in lockstep on plain arrays, with no transport and no
// executor, so the schedules can be checked on their own ("tests check the list").
import type { Schedule } from './schedules';

export function simulate(schedules: Schedule[], inputs: Float32Array[]): Float32Array[] {
  const data = inputs.map((x) => x.slice());
  const steps = schedules[0].steps.length;
  for (const s of schedules) if (s.steps.length !== steps) throw new Error('ranks disagree on the step count');
  // Messages wait on the wire until received (a transport keeps early arrivals), possibly steps later.
  const wire = new Map<string, Float32Array>();
  for (let t = 0; t < steps; t++) {
    // Everything sent in a step is read before anything received in it is written (barrier semantics).
    for (const s of schedules) {
      for (const send of s.steps[t].sends) {
        wire.set(`${s.rank}>${send.to}#${send.msg}`, data[s.rank].slice(send.offset, send.offset + send.length));
      }
    }
    for (const s of schedules) {
      for (const recv of s.steps[t].recvs) {
        const payload = wire.get(`${recv.from}>${s.rank}#${recv.msg}`);
        if (!payload) throw new Error(`rank ${s.rank} step ${t}: nothing sent for message ${recv.msg} from ${recv.from}`);
        if (payload.length !== recv.length) throw new Error('length mismatch');
        wire.delete(`${recv.from}>${s.rank}#${recv.msg}`);
        const target = data[s.rank];
        for (let i = 0; i < recv.length; i++) {
          target[recv.offset + i] = recv.op === 'sum' ? target[recv.offset + i] + payload[i] : payload[i];
        }
      }
    }
  }
  if (wire.size) throw new Error(`${wire.size} messages were sent and never received`);
  return data;
}

/** Integer-valued floats (small, so every sum of up to 16 ranks is exact), different per rank. */
export function integerInput(rank: number, length: number): Float32Array {
  const x = new Float32Array(length);
  for (let i = 0; i < length; i++) x[i] = ((i * 7 + rank * 13) % 23) - 11 + rank;
  return x;
}

export function exactSum(world: number, length: number): Float32Array {
  const sum = new Float32Array(length);
  for (let r = 0; r < world; r++) {
    const x = integerInput(r, length);
    for (let i = 0; i < length; i++) sum[i] += x[i];
  }
  return sum;
}

/** Index of the first element whose bits differ (-1: identical); far faster than deep equality. */
export function firstBitDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

// Peer ids, assigned by the signalling server (never chosen by a client). An id is the server's clock
// in milliseconds, base 36, fixed width (strictly increasing: two joins in one millisecond get
// consecutive values), then 12 random base64url characters from crypto.randomBytes (72 bits):
// - plain string order is join order, which is what src/peer/membership.ts derives ranks from and
//   src/lab/roster.ts picks the coordinator (the lowest id) by, so a newcomer always ranks after
//   every member already there and can never make itself rank 0 or coordinator of a running room;
// - an id is never handed out twice, so an id cannot be squatted before its owner joins nor taken
//   over after its owner leaves, and the random part cannot be guessed.
import { randomBytes } from 'node:crypto';

export function peerIdSource(clock: () => number = Date.now, random: (n: number) => Buffer = randomBytes): () => string {
  let last = 0;
  return () => {
    const time = Math.max(Math.floor(clock()), last + 1);
    last = time;
    return `${time.toString(36).padStart(9, '0')}-${random(9).toString('base64url')}`;
  };
}

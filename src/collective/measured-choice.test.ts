// Measured times beside the cost model: size classes, the room's pooled medians (the same on every
// rank), the choice that lets a measured median override a prediction, which alternatives get a trial,
// and the fixed-size record the room all-gathers.
import { describe, expect, it } from 'vitest';
import { pickFastest, predictSeconds, type AllReduceAlgorithm, type LinkCost } from './cost-model';
import { chooseAlgorithm, decodeTimings, encodeTimings, measuredCells, sizeClass, trialCandidates, type TimedBucket } from './measured-choice';

const LINK: LinkCost = { alpha: 0.02, beta: 1 / 5e6, gamma: 1 / 200e6 };
const CANDIDATES = ['ring', 'tree', 'rhd', 'naive'] as const;

describe('sizeClass', () => {
  it('is the octave, log2 rounded: 256 KiB and 283 KiB share one, 384 KiB is the next; bad sizes are refused', () => {
    expect([sizeClass(0), sizeClass(1), sizeClass(262144), sizeClass(290048), sizeClass(393216)]).toEqual([0, 0, 18, 18, 19]);
    expect(() => sizeClass(-1)).toThrow(/bytes must be/);
    expect(() => sizeClass(Number.NaN)).toThrow(/bytes must be/);
  });
});

describe('measuredCells', () => {
  it('pools every rank\'s timings per size class and algorithm, medians of time and size, ordered by class then algorithm, whatever the input order', () => {
    const rank0: TimedBucket[] = [
      { algorithm: 'naive', pickedBytes: 290048, bytes: 814336, seconds: 0.3 },
      { algorithm: 'ring', pickedBytes: 262144, bytes: 814336, seconds: 0.1 },
      { algorithm: 'naive', pickedBytes: 4096, bytes: 4096, seconds: 0.02 },
    ];
    const rank1: TimedBucket[] = [
      { algorithm: 'ring', pickedBytes: 290048, bytes: 814336, seconds: 0.2 },
      { algorithm: 'naive', pickedBytes: 290048, bytes: 814336, seconds: 0.5 },
      { algorithm: 'naive', pickedBytes: 290048, bytes: 814336, seconds: 0.4 },
    ];
    const cells = measuredCells([rank0, rank1]);
    expect(cells).toEqual([
      { algorithm: 'naive', sizeClass: 12, seconds: 0.02, bytes: 4096, samples: 1 },
      { algorithm: 'ring', sizeClass: 18, seconds: (0.1 + 0.2) / 2, bytes: 814336, samples: 2 },
      { algorithm: 'naive', sizeClass: 18, seconds: 0.4, bytes: 814336, samples: 3 },
    ]);
    expect(measuredCells([[...rank1].reverse(), [...rank0].reverse()])).toEqual(cells);
    expect(() => measuredCells([[{ algorithm: 'star' as 'ring', pickedBytes: 1, bytes: 1, seconds: 1 }]])).toThrow(/unknown all-reduce algorithm star/);
    expect(() => measuredCells([[{ algorithm: 'ring', pickedBytes: 1, bytes: 1, seconds: 0 }]])).toThrow(/seconds > 0/);
  });
});

describe('chooseAlgorithm', () => {
  it('with nothing measured in the size class it is the model\'s pick, every score the prediction', () => {
    const elsewhere = measuredCells([[{ algorithm: 'ring', pickedBytes: 1 << 20, bytes: 1 << 20, seconds: 1e-6 }]]);
    const choice = chooseAlgorithm(4, 4096, LINK, elsewhere, CANDIDATES);
    expect(choice.algorithm).toBe(pickFastest(4, 4096, LINK, CANDIDATES).algorithm);
    expect(choice.scores.every((s) => s.source === 'model')).toBe(true);
  });

  it('a measured median overrides the prediction: naive measured 3x its prediction loses to rhd measured at its own', () => {
    const bytes = 290048;
    const timed = 814336;
    expect(pickFastest(4, bytes, LINK, CANDIDATES).algorithm).toBe('naive');
    const cells = measuredCells([
      [
        { algorithm: 'naive', pickedBytes: bytes, bytes: timed, seconds: 3 * predictSeconds('naive', 4, timed, LINK) },
        { algorithm: 'rhd', pickedBytes: bytes, bytes: timed, seconds: predictSeconds('rhd', 4, timed, LINK) },
      ],
    ]);
    const choice = chooseAlgorithm(4, bytes, LINK, cells, CANDIDATES);
    expect(choice.algorithm).toBe('rhd');
    // Unmeasured candidates are predicted for the measured size, not the size picked for, times the
    // median of measured / predicted over the measured cells: (3 + 1) / 2.
    expect(choice.scores.map((s) => [s.algorithm, s.source])).toEqual([['ring', 'model'], ['tree', 'model'], ['rhd', 'measured'], ['naive', 'measured']]);
    const expected = [2 * predictSeconds('ring', 4, timed, LINK), 2 * predictSeconds('tree', 4, timed, LINK), predictSeconds('rhd', 4, timed, LINK), 3 * predictSeconds('naive', 4, timed, LINK)];
    choice.scores.forEach((s, i) => expect(s.seconds).toBeCloseTo(expected[i], 12));
  });

  it('an unmeasured candidate the model, scaled by the class\'s measured / predicted, puts below every measured median wins (so it runs and is measured next)', () => {
    const cells = measuredCells([[{ algorithm: 'ring', pickedBytes: 65536, bytes: 65536, seconds: 10 * predictSeconds('ring', 4, 65536, LINK) }]]);
    expect(chooseAlgorithm(4, 65536, LINK, cells, CANDIDATES).algorithm).toBe(pickFastest(4, 65536, LINK, ['tree', 'rhd', 'naive']).algorithm);
  });
});

describe('trialCandidates', () => {
  it('every candidate but the model\'s pick predicted within the factor, in the candidates\' order; a factor below 1 is refused', () => {
    const bytes = 290048;
    const best = pickFastest(4, bytes, LINK, CANDIDATES);
    const ratio = (a: AllReduceAlgorithm) => predictSeconds(a, 4, bytes, LINK) / best.seconds;
    const all = trialCandidates(4, bytes, LINK, CANDIDATES, 100);
    expect(all).toEqual(CANDIDATES.filter((a) => a !== best.algorithm));
    const within = Math.max(...all.map(ratio)) * 0.999;
    expect(trialCandidates(4, bytes, LINK, CANDIDATES, within)).toEqual(all.filter((a) => ratio(a) <= within));
    expect(trialCandidates(4, bytes, LINK, CANDIDATES, 1)).toEqual([]);
    expect(() => trialCandidates(4, bytes, LINK, CANDIDATES, 0.5)).toThrow(/within must be >= 1/);
  });
});

describe('the timings record', () => {
  it('survives the fixed-size record bit for bit; a record that lies about its count or names no algorithm is refused', () => {
    const timings: TimedBucket[] = [
      { algorithm: 'tree', pickedBytes: 290048, bytes: 814336, seconds: 0.123456789 },
      { algorithm: 'naive', pickedBytes: 4096, bytes: 4096, seconds: 0.02 },
    ];
    expect(decodeTimings(encodeTimings(timings, 4))).toEqual(timings);
    expect(() => encodeTimings(timings, 1)).toThrow(/do not fit/);
    const lying = encodeTimings(timings, 2);
    new Float64Array(lying.buffer)[0] = 3;
    expect(() => decodeTimings(lying)).toThrow(/claims 3 timings/);
    const unnamed = encodeTimings(timings, 2);
    new Float64Array(unnamed.buffer)[1] = 9;
    expect(() => decodeTimings(unnamed)).toThrow(/names algorithm 9/);
  });
});

// collective=auto in the swarm summary (pure: unit-tested): from rank 0's newest agreed fit
// (`metrics().links.latest`, src/shared/link-fits.ts), what auto ran (the all-reduces per size picked
// for and algorithm, the trials included), what the room measured per algorithm and size class beside
// the fit's prediction of the same size, and what it picks now and why (measured times or the model).
import type { LinkFits } from '../src/shared/link-fits';

export interface AutoCollectiveReport {
  /** The step the newest fit was agreed after (its counts run to there), and how many fits the run made. */
  throughStep: number;
  fits: number;
  link: { alpha: number; beta: number; gamma: number };
  /** Per size picked for: the all-reduces each algorithm ran, most first. */
  usage: { bytes: number; byAlgorithm: { algorithm: string; buckets: number }[] }[];
  measured: { bytes: number; algorithm: string; measuredMs: number; predictedMs: number; samples: number }[];
  picks: { bytes: number; algorithm: string; source: 'measured' | 'model' }[];
}

/** Null before auto agreed a fit (a fixed collective=, a room of one tab). */
export function autoCollectiveReport(links: LinkFits | null | undefined): AutoCollectiveReport | null {
  const fit = links?.latest;
  if (!links || !fit) return null;
  const sizes = [...new Set((fit.usage ?? []).map((u) => u.bytes))].sort((a, b) => a - b);
  const usage = sizes.map((bytes) => ({
    bytes,
    byAlgorithm: (fit.usage ?? [])
      .filter((u) => u.bytes === bytes)
      .map(({ algorithm, buckets }) => ({ algorithm, buckets }))
      .sort((a, b) => b.buckets - a.buckets),
  }));
  return {
    throughStep: fit.step + 1,
    fits: links.fits,
    link: { ...fit.link },
    usage,
    measured: (fit.measured ?? []).map((m) => ({ ...m })),
    picks: fit.picks.map((p) => ({ bytes: p.bytes, algorithm: p.algorithm, source: p.source ?? 'model' })),
  };
}

const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));
const rate = (perByte: number) => (perByte > 0 ? `${(1 / perByte / 1e6).toFixed(2)} MB/s` : 'inf');

function size(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} B`;
}

export function formatAutoCollective(r: AutoCollectiveReport): string[] {
  const { alpha, beta, gamma } = r.link;
  const lines = [`collective=auto       rank 0's view through step ${r.throughStep} (the newest of ${r.fits} agreed fits): alpha ${ms(alpha * 1000)} ms, 1/beta ${rate(beta)} per link, 1/gamma ${rate(gamma)} per rank`];
  lines.push(
    ...(r.usage.length
      ? r.usage.map((u, i) => `${i ? '                     ' : '  all-reduces run    '} for ${size(u.bytes)}: ${u.byAlgorithm.map((a) => `${a.algorithm} ${a.buckets}`).join(', ')} (trials included)`)
      : ['  all-reduces run     none timed yet']),
  );
  lines.push(
    ...r.measured.map((m, i) => `${i ? '                     ' : '  measured vs model  '} ${m.algorithm.padEnd(5)} ${size(m.bytes)}: ${ms(m.measuredMs)} ms measured (median of ${m.samples}) / ${ms(m.predictedMs)} ms predicted (${(m.measuredMs / m.predictedMs).toFixed(2)}x)`),
  );
  lines.push(...r.picks.map((p, i) => `${i ? '                     ' : '  picks now          '} ${size(p.bytes)}: ${p.algorithm} (${p.source === 'measured' ? 'by measured times' : 'by the model'})`));
  return lines;
}

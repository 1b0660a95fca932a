// The store's copy of collective=auto's link fits (src/parallel/collective-choice.ts; kept as
// shared/link-fits.ts says), and the selector the dashboard's Links panel draws from. A new run starts
// with none.
import type { LinkFitEvent } from '../shared/events';
import { NO_LINK_FITS, nextLinkFits, type LinkFits } from '../shared/link-fits';

export type LinksSlice = LinkFits;

export const NO_LINKS: LinksSlice = NO_LINK_FITS;

export function reduceLinkFit(slice: LinksSlice, event: LinkFitEvent): LinksSlice {
  const { type: _type, t: _t, ...fit } = event;
  return nextLinkFits(slice, fit);
}

/** One bucket size in the panel: the pick, its prediction and latency bound, and (from the last refit) what it measured. */
export interface LinkRow {
  bytes: number;
  algorithm: string;
  predictedMs: number;
  latencyBoundMs: number;
  /** The refit's measurement of a bucket of this size, with the algorithm that ran it and what the older fit predicted. */
  measured: { algorithm: string; predictedMs: number; measuredMs: number } | null;
}

export interface LinksView {
  kind: 'formed' | 'refit';
  /** 1-based step the fit was agreed after. */
  step: number;
  world: number;
  alphaMs: number;
  /** MB/s (1e6 bytes per second) one link carries, and one rank receives and handles; Infinity when the term is 0. */
  linkMBps: number;
  rankMBps: number;
  rmsRelativeError: number;
  samples: number;
  rows: LinkRow[];
}

const perSecond = (secondsPerByte: number) => (secondsPerByte > 0 ? 1 / secondsPerByte / 1e6 : Number.POSITIVE_INFINITY);

/** The panel's numbers from the store's slice, or null before any fit. */
export function selectLinks(slice: LinksSlice): LinksView | null {
  const fit = slice.latest;
  if (!fit) return null;
  const refit = slice.lastRefit;
  const rows = fit.picks.map((pick): LinkRow => {
    const bucket = refit?.buckets.find((b) => b.bytes === pick.bytes);
    return {
      bytes: pick.bytes,
      algorithm: pick.algorithm,
      predictedMs: pick.predictedMs[pick.algorithm],
      latencyBoundMs: pick.latencyBoundMs,
      measured: bucket ? { algorithm: bucket.algorithm, predictedMs: bucket.predictedMs, measuredMs: bucket.measuredMs } : null,
    };
  });
  return {
    kind: fit.kind,
    step: fit.step + 1,
    world: fit.world,
    alphaMs: fit.link.alpha * 1000,
    linkMBps: perSecond(fit.link.beta),
    rankMBps: perSecond(fit.link.gamma),
    rmsRelativeError: fit.rmsRelativeError,
    samples: fit.samples,
    rows,
  };
}

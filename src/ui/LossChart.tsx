// Training curves with uPlot (Canvas 2D): train loss per rank and the room's mean, validation loss,
// accuracy on its own axis. Fed imperatively: a store subscription schedules at most one setData per
// animation frame, so hundreds of points a second cost no React renders.
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { LabStore } from '../store/lab-store';
import { buildLossSeries, latestReadout, type LossSeries } from './loss-series';

const RANK_COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2', '#edc948', '#ff9da7', '#9c755f'];
const HEIGHT = 280;
const AXIS = {
  stroke: '#d9dee7',
  font: '14px system-ui, sans-serif',
  labelFont: '600 14px system-ui, sans-serif',
  grid: { stroke: '#2c313c', width: 1 },
  ticks: { stroke: '#3a404d', width: 1 },
};

function chartOptions(ranks: readonly number[], width: number): uPlot.Options {
  return {
    width,
    height: HEIGHT,
    scales: { x: { time: false }, acc: { range: [0, 1] } },
    // Canvas cannot resolve CSS colours such as currentColor (it drew the axes black on our dark
    // panels): the axes get the stylesheet's text colour and a readable size, spelled out.
    axes: [
      { label: 'step', ...AXIS },
      { label: 'loss', ...AXIS },
      { label: 'accuracy', scale: 'acc', side: 1, ...AXIS, grid: { show: false } },
    ],
    series: [
      { label: 'step' },
      ...ranks.map((rank, i) => ({
        label: `rank ${rank}`,
        stroke: RANK_COLORS[i % RANK_COLORS.length],
        width: 1,
        spanGaps: true,
      })),
      { label: 'train (room mean)', stroke: '#e8e8e8', width: 2.5, spanGaps: true },
      { label: 'val loss', stroke: '#e15759', width: 2.5, dash: [8, 4], spanGaps: true, points: { show: true } },
      { label: 'accuracy', scale: 'acc', stroke: '#9be564', width: 2, spanGaps: true, points: { show: true } },
    ],
    legend: { show: true },
  };
}

export function LossChart({ store }: { store: LabStore }) {
  const host = useRef<HTMLDivElement>(null);
  const readout = useRef<HTMLParagraphElement>(null);

  useEffect(() => {
    const target = host.current;
    if (!target) return;
    let plot: uPlot | null = null;
    let ranksKey = '';
    let frame = 0;
    const widthOf = () => Math.max(320, target.clientWidth || 640);

    const draw = () => {
      frame = 0;
      const { steps, evals, roomLosses } = store.getState();
      const series: LossSeries = buildLossSeries(steps.toArray(), evals.toArray(), roomLosses.toArray());
      const key = series.ranks.join(',');
      if (!plot || key !== ranksKey) {
        // A rank joined or left: the series list changed, so the chart is rebuilt (rare).
        plot?.destroy();
        plot = new uPlot(chartOptions(series.ranks, widthOf()), series.data, target);
        ranksKey = key;
      } else plot.setData(series.data);
      if (readout.current) readout.current.textContent = latestReadout(series);
      // How many steps the chart holds, for scripts and tests (the canvas itself cannot be read).
      target.dataset.points = String(series.data[0]?.length ?? 0);
    };
    draw();
    const unsubscribe = store.subscribe((state, prev) => {
      if (state.metricsTick !== prev.metricsTick && frame === 0) frame = requestAnimationFrame(draw);
    });
    const resize =
      typeof ResizeObserver === 'function' ? new ResizeObserver(() => plot?.setSize({ width: widthOf(), height: HEIGHT })) : null;
    resize?.observe(target);
    return () => {
      unsubscribe();
      resize?.disconnect();
      if (frame !== 0) cancelAnimationFrame(frame);
      plot?.destroy();
    };
  }, [store]);

  return (
    <section className="panel loss-chart" aria-labelledby="loss-title">
      <h2 id="loss-title">Loss and accuracy</h2>
      <div ref={host} className="chart-host" role="img" aria-label="Training and validation loss by step" />
      <p ref={readout} className="readout" data-testid="loss-readout" />
    </section>
  );
}

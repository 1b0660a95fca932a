// The dashboard's one store (docs/architecture.md principle 6): a zustand vanilla store that reduces LabEvents,
// and the hooks React views use to select from it. Producers publish on the EventBus and move on; the
// store never makes them wait, and no view re-renders per chunk event.
import { useEffect, useRef, useState } from 'react';
import { createStore, type StoreApi } from 'zustand/vanilla';
import { useStore } from 'zustand';
import { DEFAULT_CONFIG, type LabConfig } from '../lab/config';
import type { EventBus } from '../shared/events';
import { initialLabData, type LabState } from './lab-state';
import { EMPTY_PIPELINE } from './pipeline-slice';
import { EMPTY_MODEL_PARALLEL } from './model-parallel-slice';
import { NO_LINKS } from './links-slice';
import { reduceLabEvent } from './reduce';

export type LabStore = StoreApi<LabState>;

export function createLabStore(config: LabConfig = DEFAULT_CONFIG): LabStore {
  return createStore<LabState>()((set, get) => ({
    ...initialLabData(config),
    setConfig: (patch) => set({ config: { ...get().config, ...patch } }),
    setClassroomIndex: (index) => {
      const lesson = get().classroom;
      const last = Math.max(0, lesson.snapshots.length - 1);
      set({ classroom: { ...lesson, index: Math.min(Math.max(0, Math.trunc(index)), last) } });
    },
    setPipelineStep: (index) => {
      const pipeline = get().pipeline;
      const last = pipeline.steps.length - 1;
      const selected = index === null || last < 0 ? null : Math.min(Math.max(0, Math.trunc(index)), last);
      set({ pipeline: { ...pipeline, selected } });
    },
    clearRun: () => {
      const { steps, evals, roomLosses, chunks, metricsTick, chunkTick } = get();
      steps.clear();
      roomLosses.clear();
      evals.clear();
      chunks.clear();
      set({
        metricsTick: metricsTick + 1,
        chunkTick: chunkTick + 1,
        hashes: [],
        hashMismatches: 0,
        refused: { recent: [], total: 0, byReason: {} },
        samples: [],
        pipeline: EMPTY_PIPELINE,
        modelParallel: EMPTY_MODEL_PARALLEL,
        links: NO_LINKS,
        run: { state: 'idle', error: null },
      });
    },
  }));
}

/** Feeds every event of `bus` into `store`. Returns the unsubscribe function. */
export function connectBus(store: LabStore, bus: EventBus): () => void {
  return bus.subscribe((event) => {
    const change = reduceLabEvent(store.getState(), event);
    if (change) store.setState(change);
  });
}

/** Selects from the store; re-renders when the selected value changes (by Object.is). */
export function useLab<T>(store: LabStore, selector: (state: LabState) => T): T {
  return useStore(store, selector);
}

/**
 * Selects from the store at most once per animation frame: for views of high-frequency data (step
 * times, throughput) that would otherwise re-render on every step. The value shown is always a real
 * one from the store, only the redraw is paced.
 */
export function useLabFrame<T>(store: LabStore, selector: (state: LabState) => T): T {
  const [value, setValue] = useState(() => selector(store.getState()));
  const selectorRef = useRef(selector);
  selectorRef.current = selector;
  const shown = useRef(value);
  shown.current = value;
  useEffect(() => {
    let frame = 0;
    const update = () => {
      frame = 0;
      // Only a changed value reaches React: an update with the same value can still re-render the
      // component, and views of the ring buffers are asked once per frame for as long as chunks flow.
      const next = selectorRef.current(store.getState());
      if (!Object.is(next, shown.current)) {
        shown.current = next;
        setValue(() => next);
      }
    };
    update();
    const unsubscribe = store.subscribe(() => {
      if (frame === 0) frame = requestAnimationFrame(update);
    });
    return () => {
      unsubscribe();
      if (frame !== 0) cancelAnimationFrame(frame);
    };
  }, [store]);
  return value;
}

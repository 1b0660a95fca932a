// The dashboard: every view, fed from the one store, every action handed to the LabController. Large
// type for projectors, a motion switch, real buttons and labels in a sensible tab order.
import { useState } from 'react';
import type { LabStore } from '../store/lab-store';
import { useLab, useLabFrame } from '../store/lab-store';
import { metricsToCsv, metricsToJson } from '../store/export';
import { ClassroomView } from './ClassroomView';
import type { LabController } from '../lab/controller';
import { Controls } from './Controls';
import { downloadBlob, downloadText } from './download';
import { EventLog } from './EventLog';
import { LossChart } from './LossChart';
import { PeersTable } from './PeersTable';
import { PipelineLessonView } from './PipelineLessonView';
import { TensorLessonView } from './TensorLessonView';
import { PipelineTimelinePanel } from './PipelineTimeline';
import { RingHistory } from './RingHistory';
import type { Topology } from './ring-geometry';
import { RingView } from './RingView';
import { RoomPanel } from './RoomPanel';
import { readLabServerInfo, roomLink } from '../lab/lab-server';
import { normalizeRoomName } from '../peer/room-code';
import { SamplesView } from './SamplesView';
import { StepTimeBar } from './StepTimeBar';
import { usePrefersReducedMotion } from './use-reduced-motion';
import { ZeroLayoutView } from './ZeroLayoutView';
import { SharesView } from './SharesView';
import { StrategySwitch } from './StrategySwitch';
import { LinkShapeControl } from './LinkShapeControl';
import { LinksPanel } from './LinksPanel';
import { selectLinks } from '../store/links-slice';
import { ExpertRoutingView, TensorCollectivesView } from './ModelParallelView';
import './styles.css';

/** The lab's own server, when it served this page (read once: the tag does not change). */
const labServer = typeof document === 'undefined' ? null : readLabServerInfo(document);

export interface AppProps {
  store: LabStore;
  controller: LabController;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function App({ store, controller }: AppProps) {
  const [large, setLarge] = useState(false);
  const prefersReduced = usePrefersReducedMotion();
  const [still, setStill] = useState<boolean | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const run = useLab(store, (s) => s.run);
  const config = useLab(store, (s) => s.config);
  // Primitives, not the report object: the mesh publishes a fresh one every heartbeat.
  const selfRank = useLab(store, (s) => s.self?.rank ?? null);
  const selfWorld = useLab(store, (s) => s.self?.world ?? null);
  const selfRoom = useLab(store, (s) => s.self?.room ?? null);
  const ring = useLab(store, (s) => s.ring);
  const samples = useLab(store, (s) => s.samples);
  const refused = useLab(store, (s) => s.refused);
  const logs = useLab(store, (s) => s.logs);
  const step = useLabFrame(store, (s) => s.steps.last()?.step ?? 0);
  const lastCollective = useLab(store, (s) => s.chunks.last()?.collective ?? null);
  // A tab that is not training still draws a lesson's ring: as many ranks as the lesson has.
  const lessonWorld = useLab(store, (s) => s.classroom.snapshots[0]?.perRank.length ?? 0);
  const pipelineRun = useLab(store, (s) => s.pipeline.steps.length > 0);
  const pipelineLesson = useLab(store, (s) => s.pipelineLesson.runId !== null);
  const tensorLesson = useLab(store, (s) => s.tensorLesson.runId !== null);

  /** Runs a controller action; a failure is shown, never swallowed. */
  const perform = (label: string, action: () => unknown) => {
    setActionError(null);
    Promise.resolve()
      .then(action)
      .catch((e: unknown) => setActionError(`${label} failed: ${errorText(e)}`));
  };

  const topology: Topology =
    lastCollective === 'naive-allreduce' ? 'all-to-all' : lastCollective === 'ps-round' || config.mode === 'ps' ? 'ps' : 'ring';
  const motionOff = still ?? prefersReduced;

  return (
    <div className={large ? 'lab large' : 'lab'}>
      <header className="lab-header">
        <h1>WebGPU training lab</h1>
        <p className={`run-state state-${run.state}`} aria-live="polite" data-testid="run-state">
          {run.state}
          {run.state !== 'idle' && ` · step ${step} / ${config.steps}`}
          {selfRank !== null && (selfRank < 0 ? ` · joining a ring of ${selfWorld}` : ` · rank ${selfRank} of ${selfWorld}`)}
        </p>
        <div className="view-options">
          <button type="button" aria-pressed={large} onClick={() => setLarge(!large)}>
            Large type
          </button>
          <button type="button" aria-pressed={motionOff} onClick={() => setStill(!motionOff)}>
            Reduce motion
          </button>
        </div>
      </header>
      {(run.error || actionError) && (
        <div role="alert" className="error banner">
          {run.error && <p>Run error: {run.error}</p>}
          {actionError && <p>{actionError}</p>}
        </div>
      )}
      <div className="lab-grid">
        <aside className="side">
          <RoomPanel
            room={selfRoom ?? (config.room || null)}
            // The room goes into the store's config too: the panel shows it, and runs started here use it.
            onCreate={() => perform('Create room', async () => store.getState().setConfig({ room: await controller.createRoom() }))}
            onJoin={(code) =>
              perform('Join room', async () => {
                await controller.joinRoom(code);
                store.getState().setConfig({ room: normalizeRoomName(code) });
              })
            }
            linkFor={(code, startOnOpen) => roomLink({ room: code, config, info: labServer, location, startOnOpen })}
          />
          <Controls
            config={config}
            runState={run.state}
            onChange={(patch) => store.getState().setConfig(patch)}
            onStart={() =>
              perform('Start', () => {
                store.getState().clearRun();
                return controller.start(store.getState().config);
              })
            }
            onPause={() => perform('Pause', () => controller.pause())}
            onResume={() => perform('Resume', () => controller.resume())}
            onReset={() =>
              perform('Reset', () => {
                controller.reset();
                store.getState().clearRun();
              })
            }
            onExportCsv={() => {
              const { steps, evals } = store.getState();
              downloadText('metrics.csv', metricsToCsv(steps.toArray(), evals.toArray()), 'text/csv');
            }}
            onExportJson={() => downloadText('metrics.json', metricsToJson(store.getState()), 'application/json')}
            onDownloadCheckpoint={() =>
              perform('Checkpoint', async () => {
                const file = await controller.exportCheckpoint();
                downloadBlob(file.filename, file.blob);
              })
            }
          />
          <PeersPanel store={store} />
          {config.room !== '' && <StrategySwitch active={(run.state === 'training' || run.state === 'paused') && (selfWorld ?? 1) > 1} onSwitch={(choice) => controller.switchStrategy(choice)} />}
          {config.room !== '' && <LinkShapePanel store={store} controller={controller} />}
          <SharesPanel store={store} />
          <LinksFitPanel store={store} />
          <RingHistory changes={ring} />
        </aside>
        <main className="main">
          {/* During a lesson the classroom is what the room looks at: it goes first. */}
          {lessonWorld > 0 && <ClassroomPanel store={store} controller={controller} onError={setActionError} />}
          {pipelineLesson && <PipelineLessonPanel store={store} controller={controller} onError={setActionError} />}
          {tensorLesson && <TensorLessonPanel store={store} controller={controller} onError={setActionError} />}
          <RingView store={store} topology={topology} reducedMotion={motionOff} world={selfWorld ?? (lessonWorld || undefined)} />
          <LossChart store={store} />
          <StepTimeBar store={store} />
          {pipelineRun && <PipelineTimelinePanel store={store} />}
          <ModelParallelPanel store={store} />
          <ZeroLayoutPanel store={store} />
          {lessonWorld === 0 && <ClassroomPanel store={store} controller={controller} onError={setActionError} />}
          {!pipelineLesson && <PipelineLessonPanel store={store} controller={controller} onError={setActionError} />}
          {!tensorLesson && <TensorLessonPanel store={store} controller={controller} onError={setActionError} />}
          {(config.model === 'gpt' || samples.length > 0) && <SamplesView samples={samples} />}
          <EventLog refused={refused} logs={logs} />
        </main>
      </div>
    </div>
  );
}

/**
 * The peers and whether their hashes agree. Every rank reports a hash every step, so this panel alone
 * subscribes to them, redrawn once per animation frame at most: re-rendering the whole dashboard per
 * hash report was the largest part of what the dashboard cost a training tab's main thread (4 tabs
 * on MNIST, bench/overlap-profile.ts).
 */
function PeersPanel({ store }: { store: LabStore }) {
  const self = useLab(store, (s) => s.self);
  const peers = useLab(store, (s) => s.peers);
  const hashes = useLabFrame(store, (s) => s.hashes);
  return <PeersTable self={self} peers={peers} hashes={hashes} />;
}

/** Per-link shaping for the tabs this one is linked to (the peers the mesh reports). */
function LinkShapePanel({ store, controller }: { store: LabStore; controller: LabController }) {
  const peers = useLab(store, (s) => s.peers);
  return <LinkShapeControl peers={peers} onShape={(peerId, setting) => controller.shapeLink(peerId, setting)} />;
}

/** Expert runs' routing heatmap and tensor runs' per-block collectives, newest step (nothing for other runs). */
function ModelParallelPanel({ store }: { store: LabStore }) {
  const expertSteps = useLab(store, (s) => s.modelParallel.expertSteps);
  const tensorSteps = useLab(store, (s) => s.modelParallel.tensorSteps);
  return (
    <>
      <ExpertRoutingView step={expertSteps[expertSteps.length - 1] ?? null} />
      <TensorCollectivesView step={tensorSteps[tensorSteps.length - 1] ?? null} />
    </>
  );
}

/** collective=auto's link fit and each bucket's pick (nothing before a fit). */
function LinksFitPanel({ store }: { store: LabStore }) {
  const links = useLab(store, (s) => s.links);
  return <LinksPanel view={selectLinks(links)} />;
}

/** Each tab's share of the global batch and its speed, once a room of unequal tabs re-balanced. */
function SharesPanel({ store }: { store: LabStore }) {
  const shares = useLab(store, (s) => s.shares);
  const selfRank = useLab(store, (s) => s.self?.rank);
  return <SharesView shares={shares} selfRank={selfRank} />;
}

/** The layout the trainer reported; before a run, the configured stage on that layout, marked planned. */
function ZeroLayoutPanel({ store }: { store: LabStore }) {
  const layout = useLab(store, (s) => s.zeroLayout);
  const memory = useLab(store, (s) => s.memory);
  const configured = useLab(store, (s) => s.config.zero);
  const runState = useLab(store, (s) => s.run.state);
  if (!layout) {
    return (
      <section className="panel zero-layout" aria-labelledby="zero-title">
        <h2 id="zero-title">ZeRO shard layout</h2>
        <p className="muted">Shown once a run has partitioned its parameters across the ring.</p>
      </section>
    );
  }
  const idle = runState === 'idle' || runState === 'done';
  const stage = idle ? configured : layout.stage;
  return (
    <ZeroLayoutView
      partition={layout.partition}
      total={layout.total}
      stage={stage}
      optimizerFloatsPerParam={layout.optimizerFloatsPerParam}
      memory={memory}
      planned={stage !== layout.stage}
    />
  );
}

function ClassroomPanel({
  store,
  controller,
  onError,
}: {
  store: LabStore;
  controller: LabController;
  onError(message: string): void;
}) {
  // The store moves a viewer who is on the newest step on to each new one (reduce.ts), so the teacher
  // sees the step Next released, and the other tabs follow the teacher.
  const lesson = useLab(store, (s) => s.classroom);
  const fail = (what: string) => (e: unknown) => onError(`${what} failed: ${errorText(e)}`);
  return (
    <ClassroomView
      snapshots={lesson.snapshots}
      chunks={lesson.chunks}
      index={lesson.index}
      totalSteps={lesson.steps ?? undefined}
      role={lesson.runId === null ? undefined : lesson.teaching ? 'teacher' : 'student'}
      onIndexChange={(i) => store.getState().setClassroomIndex(i)}
      onLoad={() => controller.classroom.load().catch(fail('Classroom'))}
      onAdvance={lesson.runId !== null && lesson.teaching ? () => void controller.classroom.next().catch(fail('Classroom step')) : undefined}
    />
  );
}

function PipelineLessonPanel({ store, controller, onError }: { store: LabStore; controller: LabController; onError(message: string): void }) {
  const lesson = useLab(store, (s) => s.pipelineLesson);
  const fail = (what: string) => (e: unknown) => onError(`${what} failed: ${errorText(e)}`);
  return (
    <PipelineLessonView
      lesson={lesson}
      onLoad={(choice) => controller.classroom.load('pipeline', choice).catch(fail('Pipeline lesson'))}
      onNext={lesson.teaching ? () => void controller.classroom.next().catch(fail('Pipeline lesson step')) : undefined}
    />
  );
}

function TensorLessonPanel({ store, controller, onError }: { store: LabStore; controller: LabController; onError(message: string): void }) {
  const lesson = useLab(store, (s) => s.tensorLesson);
  const fail = (what: string) => (e: unknown) => onError(`${what} failed: ${errorText(e)}`);
  return (
    <TensorLessonView
      lesson={lesson}
      onLoad={() => controller.classroom.load('tensor').catch(fail('Tensor lesson'))}
      onNext={lesson.teaching ? () => void controller.classroom.next().catch(fail('Tensor lesson step')) : undefined}
    />
  );
}

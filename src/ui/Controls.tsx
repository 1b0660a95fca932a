// The run's settings and its buttons. Settings are validated by the same rules the URL parser uses
// (validateConfig), so the dashboard cannot start a run the lab would refuse.
import { useId, type ChangeEvent, type ReactNode } from 'react';
import {
  ConfigError,
  MODEL_DEFAULT_DATASET,
  validateConfig,
  type Compression,
  type DatasetKind,
  type LabConfig,
  type ModelKind,
  type ParallelMode,
  type ZeroStage,
} from '../lab/config';
import type { RunState } from '../shared/events';

export interface ControlsProps {
  config: LabConfig;
  runState: RunState;
  onChange(patch: Partial<LabConfig>): void;
  onStart(): void;
  onPause(): void;
  onResume(): void;
  onReset(): void;
  onExportCsv(): void;
  onExportJson(): void;
  onDownloadCheckpoint(): void;
}

const MODELS: { value: ModelKind; label: string }[] = [
  { value: 'mlp', label: 'MLP (classifier)' },
  { value: 'gpt', label: 'Tiny GPT (characters)' },
];
const DATASETS: Record<ModelKind, { value: DatasetKind; label: string }[]> = {
  mlp: [
    { value: 'mnist', label: 'MNIST digits' },
    { value: 'spirals', label: 'Spirals' },
    { value: 'circles', label: 'Circles' },
    { value: 'xor', label: 'XOR' },
    { value: 'gaussians', label: 'Gaussians' },
  ],
  gpt: [
    { value: 'sotu', label: 'State of the Union' },
    { value: 'text', label: 'Text' },
  ],
};
const COMPRESSIONS: { value: Compression; label: string }[] = [
  { value: 'none', label: 'None (f32)' },
  { value: 'fp16', label: 'fp16' },
  { value: 'topk', label: 'Top-K + error feedback' },
  { value: 'randk', label: 'Random-K' },
  { value: 'powersgd', label: 'PowerSGD (rank r)' },
];

function validationError(config: LabConfig): string | null {
  try {
    validateConfig(config);
    return null;
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
}

function Field({ label, children }: { label: string; children: (id: string) => ReactNode }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children(id)}
    </div>
  );
}

export function Controls(props: ControlsProps) {
  const { config, runState, onChange } = props;
  const error = validationError(config);
  const running = runState === 'training' || runState === 'reforming' || runState === 'connecting' || runState === 'loading';
  const locked = running || runState === 'paused';
  const intOf = (key: 'batch' | 'accum' | 'steps' | 'seed') => (e: ChangeEvent<HTMLInputElement>) => {
    // Batch and steps: an empty box means 0, the model's own default (shown as a placeholder, not "0").
    if (e.target.value === '' && (key === 'batch' || key === 'steps')) return onChange({ [key]: 0 });
    const value = Number(e.target.value);
    if (Number.isInteger(value) && value >= (key === 'seed' ? 0 : 1)) onChange({ [key]: value });
  };

  return (
    <section className="panel controls" aria-labelledby="controls-title">
      <h2 id="controls-title">Run</h2>
      <fieldset disabled={locked} className="settings">
        <legend className="muted">{locked ? 'Settings (locked while a run is live)' : 'Settings'}</legend>
        <Field label="Your name">
          {(id) => (
            <input
              id={id}
              type="text"
              maxLength={32}
              autoComplete="nickname"
              placeholder="shown to the room"
              value={config.name}
              onChange={(e) => onChange({ name: e.target.value })}
            />
          )}
        </Field>
        <Field label="Model">
          {(id) => (
            <select
              id={id}
              value={config.model}
              onChange={(e) => {
                const model = e.target.value as ModelKind;
                onChange({ model, dataset: MODEL_DEFAULT_DATASET[model] });
              }}
            >
              {MODELS.map((m) => (
                <option key={m.value} value={m.value}>
                  {m.label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Dataset">
          {(id) => (
            <select id={id} value={config.dataset} onChange={(e) => onChange({ dataset: e.target.value as DatasetKind })}>
              {DATASETS[config.model].map((d) => (
                <option key={d.value} value={d.value}>
                  {d.label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Parallelism">
          {(id) => (
            <select id={id} value={config.mode} onChange={(e) => onChange({ mode: e.target.value as ParallelMode })}>
              <option value="ring">Ring all-reduce</option>
              <option value="ps">Parameter server</option>
              <option value="diloco">DiLoCo / local SGD</option>
            </select>
          )}
        </Field>
        <Field label="ZeRO stage">
          {(id) => (
            <select id={id} value={config.zero} onChange={(e) => onChange({ zero: Number(e.target.value) as ZeroStage })}>
              <option value={0}>0: replicate everything</option>
              <option value={1}>1: shard optimizer state</option>
              <option value={2}>2: + gradients</option>
              <option value={3}>3: + parameters</option>
            </select>
          )}
        </Field>
        <Field label="Compression">
          {(id) => (
            <select id={id} value={config.compression} onChange={(e) => onChange({ compression: e.target.value as Compression })}>
              {COMPRESSIONS.map((c) => (
                <option key={c.value} value={c.value}>
                  {c.label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Global batch">
          {(id) => <input id={id} type="number" min={1} value={config.batch || ''} placeholder="model default" onChange={intOf('batch')} />}
        </Field>
        <Field label="Accumulation steps">
          {(id) => <input id={id} type="number" min={1} value={config.accum} onChange={intOf('accum')} />}
        </Field>
        <Field label="Steps">
          {(id) => <input id={id} type="number" min={1} value={config.steps || ''} placeholder="model default" onChange={intOf('steps')} />}
        </Field>
        <Field label="Seed">
          {(id) => <input id={id} type="number" min={0} value={config.seed} onChange={intOf('seed')} />}
        </Field>
      </fieldset>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      <div className="buttons">
        {runState === 'paused' ? (
          <button type="button" className="primary" onClick={props.onResume}>
            Resume
          </button>
        ) : (
          <button type="button" className="primary" onClick={props.onStart} disabled={running || error !== null}>
            Start
          </button>
        )}
        <button type="button" onClick={props.onPause} disabled={runState !== 'training'}>
          Pause
        </button>
        <button type="button" onClick={props.onReset} disabled={runState === 'idle'}>
          Reset
        </button>
      </div>
      <div className="buttons">
        <button type="button" onClick={props.onExportCsv}>
          Export metrics CSV
        </button>
        <button type="button" onClick={props.onExportJson}>
          Export metrics JSON
        </button>
        <button type="button" onClick={props.onDownloadCheckpoint} disabled={runState === 'idle'}>
          Download checkpoint
        </button>
      </div>
    </section>
  );
}

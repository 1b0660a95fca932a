// The dashboard's strategy control: while a room trains, switch its strategy (ring, fp16, Top-K,
// Random-K, PowerSGD, DiLoCo, the parameter server) at a step boundary without restarting. The room's
// rank 0 picks the step (src/lab/strategy-switch.ts); this panel says which, or why it refused.
import { useState } from 'react';

/** The strategies offered, each named in full (keys left out take their defaults). */
export const STRATEGY_PRESETS: { label: string; choice: Record<string, string | number> }[] = [
  { label: 'ring (dense)', choice: {} },
  { label: 'ring, fp16 on the wire', choice: { compression: 'fp16' } },
  { label: 'Top-K 1%', choice: { compression: 'topk', ratio: 0.01 } },
  { label: 'Random-K 1%', choice: { compression: 'randk', ratio: 0.01 } },
  { label: 'PowerSGD rank 2', choice: { compression: 'powersgd', rank: 2 } },
  { label: 'DiLoCo H=10', choice: { mode: 'diloco', inner: 10 } },
  { label: 'DiLoCo H=50', choice: { mode: 'diloco', inner: 50 } },
  { label: 'parameter server', choice: { mode: 'ps' } },
];

export interface StrategySwitchProps {
  /** Whether a room is training (or paused): only then is there a strategy to switch. */
  active: boolean;
  onSwitch(choice: Record<string, string | number>): Promise<{ step: number; strategy: string }>;
}

export function StrategySwitch({ active, onSwitch }: StrategySwitchProps) {
  const [preset, setPreset] = useState(0);
  const [outcome, setOutcome] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = () => {
    setBusy(true);
    setOutcome(null);
    onSwitch(STRATEGY_PRESETS[preset].choice)
      .then(({ step, strategy }) => setOutcome({ ok: true, text: `Every tab switches to ${strategy} after step ${step}.` }))
      .catch((e: unknown) => setOutcome({ ok: false, text: `Not switched: ${e instanceof Error ? e.message : String(e)}` }))
      .finally(() => setBusy(false));
  };
  return (
    <section className="panel strategy-switch" aria-labelledby="strategy-switch-title">
      <h2 id="strategy-switch-title">Switch strategy</h2>
      <p className="muted small">The whole room changes at one step, without restarting; replicas stay equal.</p>
      <label htmlFor="strategy-preset">New strategy</label>{' '}
      <select id="strategy-preset" value={preset} onChange={(e) => setPreset(Number(e.target.value))} disabled={!active || busy}>
        {STRATEGY_PRESETS.map((p, i) => (
          <option key={p.label} value={i}>
            {p.label}
          </option>
        ))}
      </select>{' '}
      <button type="button" onClick={submit} disabled={!active || busy}>
        Switch
      </button>
      {!active && <p className="muted small">Available while a room trains.</p>}
      {outcome && (
        <p role={outcome.ok ? 'status' : 'alert'} className={outcome.ok ? 'small' : 'small error'}>
          {outcome.text}
        </p>
      )}
    </section>
  );
}

// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { useState } from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_CONFIG, type LabConfig } from '../lab/config';
import type { RunState } from '../shared/events';
import { Controls, type ControlsProps } from './Controls';

afterEach(cleanup);

function Harness({ runState = 'idle', spy }: { runState?: RunState; spy: Partial<ControlsProps> }) {
  const [config, setConfig] = useState<LabConfig>(DEFAULT_CONFIG);
  const noop = () => {};
  return (
    <Controls
      config={config}
      runState={runState}
      onChange={(patch) => {
        spy.onChange?.(patch);
        setConfig((c) => ({ ...c, ...patch }));
      }}
      onStart={spy.onStart ?? noop}
      onPause={spy.onPause ?? noop}
      onResume={spy.onResume ?? noop}
      onReset={noop}
      onExportCsv={spy.onExportCsv ?? noop}
      onExportJson={noop}
      onDownloadCheckpoint={spy.onDownloadCheckpoint ?? noop}
    />
  );
}

describe('Controls', () => {
  it('edits settings through labelled fields; switching model switches to its data set', () => {
    const onChange = vi.fn();
    render(<Harness spy={{ onChange }} />);
    fireEvent.change(screen.getByLabelText('ZeRO stage'), { target: { value: '2' } });
    expect(onChange).toHaveBeenLastCalledWith({ zero: 2 });
    fireEvent.change(screen.getByLabelText('Model'), { target: { value: 'gpt' } });
    expect(onChange).toHaveBeenLastCalledWith({ model: 'gpt', dataset: 'sotu' });
    expect((screen.getByLabelText('Dataset') as HTMLSelectElement).value).toBe('sotu');
    fireEvent.change(screen.getByLabelText('Global batch'), { target: { value: '128' } });
    expect(onChange).toHaveBeenLastCalledWith({ batch: 128 });
    fireEvent.change(screen.getByLabelText('Compression'), { target: { value: 'topk' } });
    expect(onChange).toHaveBeenLastCalledWith({ compression: 'topk' });
  });

  it('refuses to start a combination the lab cannot run, saying why', () => {
    const onStart = vi.fn();
    render(<Harness spy={{ onStart }} />);
    const start = screen.getByRole('button', { name: 'Start' }) as HTMLButtonElement;
    expect(start.disabled).toBe(false);
    fireEvent.change(screen.getByLabelText('ZeRO stage'), { target: { value: '1' } });
    fireEvent.change(screen.getByLabelText('Parallelism'), { target: { value: 'ps' } });
    expect(screen.getByRole('alert').textContent).toMatch(/ring/);
    expect(start.disabled).toBe(true);
    fireEvent.change(screen.getByLabelText('Parallelism'), { target: { value: 'ring' } });
    fireEvent.click(start);
    expect(onStart).toHaveBeenCalledTimes(1);
  });

  it('locks settings while training, and offers pause; a paused run offers resume', () => {
    const onPause = vi.fn();
    const onResume = vi.fn();
    const { unmount } = render(<Harness runState="training" spy={{ onPause }} />);
    expect(screen.getByLabelText('Model').matches(':disabled')).toBe(true);
    expect((screen.getByRole('button', { name: 'Start' }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(screen.getByRole('button', { name: 'Pause' }));
    expect(onPause).toHaveBeenCalled();
    unmount();
    render(<Harness runState="paused" spy={{ onResume }} />);
    fireEvent.click(screen.getByRole('button', { name: 'Resume' }));
    expect(onResume).toHaveBeenCalled();
  });

  it('exports metrics and asks for a checkpoint through its callbacks', () => {
    const onExportCsv = vi.fn();
    const onDownloadCheckpoint = vi.fn();
    render(<Harness runState="done" spy={{ onExportCsv, onDownloadCheckpoint }} />);
    fireEvent.click(screen.getByRole('button', { name: 'Export metrics CSV' }));
    fireEvent.click(screen.getByRole('button', { name: 'Download checkpoint' }));
    expect(onExportCsv).toHaveBeenCalledTimes(1);
    expect(onDownloadCheckpoint).toHaveBeenCalledTimes(1);
  });
});

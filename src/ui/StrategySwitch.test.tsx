// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { STRATEGY_PRESETS, StrategySwitch } from './StrategySwitch';

afterEach(cleanup);

describe('StrategySwitch', () => {
  it('sends the chosen strategy and says at which step the room switches', async () => {
    const onSwitch = vi.fn().mockResolvedValue({ step: 24, strategy: 'diloco H=10' });
    render(<StrategySwitch active onSwitch={onSwitch} />);
    const index = STRATEGY_PRESETS.findIndex((p) => p.label === 'DiLoCo H=10');
    fireEvent.change(screen.getByLabelText('New strategy'), { target: { value: String(index) } });
    fireEvent.click(screen.getByRole('button', { name: 'Switch' }));
    expect(onSwitch).toHaveBeenCalledWith({ mode: 'diloco', inner: 10 });
    expect((await screen.findByRole('status')).textContent).toBe('Every tab switches to diloco H=10 after step 24.');
  });

  it('shows a refusal with its reason, and is disabled when no room trains', async () => {
    const onSwitch = vi.fn().mockRejectedValue(new Error('a switch to ring fp16 is already due at step 14'));
    const { rerender } = render(<StrategySwitch active onSwitch={onSwitch} />);
    fireEvent.click(screen.getByRole('button', { name: 'Switch' }));
    expect((await screen.findByRole('alert')).textContent).toMatch(/Not switched: a switch to ring fp16 is already due at step 14/);
    rerender(<StrategySwitch active={false} onSwitch={onSwitch} />);
    expect((screen.getByRole('button', { name: 'Switch' }) as HTMLButtonElement).disabled).toBe(true);
  });
});

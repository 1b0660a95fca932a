import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import { COLLECTIVE_IDS, FIRST_FLOAT_ID } from '../collective/collective-ids';
import { f32ToF16Bits } from '../collective/codecs';
import { FakeNet } from '../peer/fake-mesh';
import { DEFAULT_CONFIG, type LabConfig } from './config';
import { settingsOf, StrategySwitcher, SWITCH_MARGIN, switchedConfig, switchStepFor } from './strategy-switch';

const room = (overrides: Partial<LabConfig> = {}): LabConfig => ({ ...DEFAULT_CONFIG, room: 'r', world: 3, steps: 100, ...overrides });

describe('switchedConfig', () => {
  it('names the strategy in full: keys left out take their defaults, the rest of the config stays', () => {
    const from = room({ mode: 'diloco', inner: 10, compression: 'fp16', lr: 0.01 });
    const to = switchedConfig(from, { compression: 'topk', ratio: 0.01 });
    expect(to).toMatchObject({ mode: 'ring', inner: DEFAULT_CONFIG.inner, compression: 'topk', ratio: 0.01, lr: 0.01, world: 3 });
    expect(switchedConfig(to, {})).toMatchObject({ mode: 'ring', compression: 'none' });
    expect(switchedConfig(to, { mode: 'diloco', inner: '50' })).toMatchObject({ mode: 'diloco', inner: 50 });
  });

  it('refuses unknown keys, bad values, bad combinations and runs that cannot switch, with the reason', () => {
    expect(() => switchedConfig(room(), { lr: 1 })).toThrow(/"lr" cannot be switched/);
    expect(() => switchedConfig(room(), { compression: 'zip' })).toThrow(/compression/);
    expect(() => switchedConfig(room(), { mode: 'ps', compression: 'fp16' })).toThrow();
    expect(() => switchedConfig(room(), { inner: 5 })).toThrow(/use mode=diloco/);
    expect(() => switchedConfig(room(), 'fp16')).toThrow(/an object/);
    expect(() => switchedConfig(room({ zero: 1 }), {})).toThrow(/ZeRO/);
    expect(() => switchedConfig(room({ mode: 'ps', staleness: 2 }), {})).toThrow(/asynchronous/);
  });
});

describe('switchStepFor', () => {
  it(`is ${SWITCH_MARGIN} steps ahead, under DiLoCo the next outer step from there, and null past the run's end`, () => {
    expect(switchStepFor({ mode: 'ring', inner: 1 }, 10, 100)).toBe(10 + SWITCH_MARGIN);
    expect(switchStepFor({ mode: 'diloco', inner: 10 }, 10, 100)).toBe(20);
    expect(switchStepFor({ mode: 'diloco', inner: 10 }, 16, 100)).toBe(20);
    expect(switchStepFor({ mode: 'diloco', inner: 10 }, 17, 100)).toBe(30);
    expect(switchStepFor({ mode: 'ring', inner: 1 }, 96, 100)).toBeNull();
    expect(switchStepFor({ mode: 'diloco', inner: 50 }, 60, 100)).toBeNull();
  });
});

/** Three tabs' switchers over a fake mesh, ranked by id; `steps[i]` is tab i's completed steps. */
function switchRoom(configs: LabConfig[], steps: number[]) {
  const ids = configs.map((_, i) => `tab${i}`);
  const net = new FakeNet(ids);
  const logs: string[][] = ids.map(() => []);
  const switchers = configs.map((config, i) => {
    const s = new StrategySwitcher({ config, step: () => steps[i], steps: () => config.steps, log: (_, m) => logs[i].push(m) });
    s.listen(net.node(ids[i]), () => ids);
    return s;
  });
  return { net, switchers, logs };
}

describe('StrategySwitcher over a mesh', () => {
  it('a request from any tab is decided by rank 0, and every tab switches at the same step', async () => {
    const configs = [room(), room(), room()];
    const steps = [20, 21, 20];
    const { switchers } = switchRoom(configs, steps);
    const answer = await switchers[2].request({ compression: 'fp16' });
    expect(answer).toEqual({ step: 20 + SWITCH_MARGIN, strategy: 'ring fp16' });
    await new Promise((r) => setTimeout(r, 5));
    for (const s of switchers) expect(s.pending()?.step).toBe(24);
    for (const [i, s] of switchers.entries()) {
      expect(s.dueAt(23)).toBe(false);
      expect(s.dueAt(24)).toBe(true);
      s.take(24);
      expect(configs[i].compression).toBe('fp16');
      expect(s.history).toEqual([{ step: 24, strategy: 'ring fp16' }]);
    }
  });

  it('refuses a second switch while one is due, and a bad one from a non-coordinator with the reason', async () => {
    const configs = [room(), room(), room()];
    const { switchers } = switchRoom(configs, [10, 10, 10]);
    await switchers[0].request({ mode: 'diloco', inner: 10 });
    await new Promise((r) => setTimeout(r, 5));
    await expect(switchers[1].request({ compression: 'fp16' })).rejects.toThrow(/already due at step 14/);
    await expect(switchers[1].request({ nonsense: 1 })).rejects.toThrow(/cannot be switched/);
  });

  it('a tab that passed the announced step stops at its next boundary rather than train with another strategy', async () => {
    const configs = [room(), room(), room()];
    const steps = [10, 10, 30];
    const { switchers } = switchRoom(configs, steps);
    await switchers[0].request({ compression: 'fp16' });
    await new Promise((r) => setTimeout(r, 5));
    expect(() => switchers[2].dueAt(30)).toThrow(/arrived when this tab was at step 30/);
  });

  it('refuses an announcement from a tab that is not rank 0', async () => {
    const configs = [room(), room(), room()];
    const { net, switchers } = switchRoom(configs, [10, 10, 10]);
    // tab1 pretends to be the coordinator: it asks tab2 directly, tab2 refuses the request, and a forged announce is refused.
    const forged = (switchers[1] as unknown as { send(peer: string, m: unknown): void }).send.bind(switchers[1]);
    forged('tab2', { kind: 'announce', id: 'x', step: 12, choice: {} });
    await new Promise((r) => setTimeout(r, 5));
    expect(net.node('tab2').refused.join()).toMatch(/not rank 0/);
    expect(switchers[2].pending()).toBeNull();
  });

  it('checks float messages in the codec of the step they belong to (fp16 from the switch step on)', async () => {
    const configs = [room(), room(), room()];
    const { switchers } = switchRoom(configs, [10, 10, 10]);
    await switchers[0].request({ compression: 'fp16' });
    await new Promise((r) => setTimeout(r, 5));
    const check = switchers[1].payloadCheck();
    switchers[1].take(14);
    // Two float16 infinities are refused as float16; two finite halves pass; a float32 NaN of the step before is refused as float32.
    const halfInf = new Uint8Array(new Uint16Array([0x7c00, 0x7c00]).buffer);
    const finiteHalves = new Uint8Array(new Uint16Array([f32ToF16Bits(1), f32ToF16Bits(-2)]).buffer);
    const f32Nan = new Uint8Array(new Float32Array([Number.NaN]).buffer);
    expect(check({ round: 14, collective: FIRST_FLOAT_ID, chunk: 0 }, halfInf)).toMatch(/float16/);
    expect(check({ round: 14, collective: FIRST_FLOAT_ID, chunk: 0 }, finiteHalves)).toBeUndefined();
    expect(check({ round: 13, collective: FIRST_FLOAT_ID, chunk: 0 }, f32Nan)).toMatch(/float32/);
    // The switch's own state all-reduce is float32 whatever the codec.
    expect(check({ round: 14, collective: COLLECTIVE_IDS.strategyState.first, chunk: 0 }, f32Nan)).toMatch(/float32/);
    // Below FIRST_FLOAT_ID (hashes, JSON): never checked as floats.
    expect(check({ round: 14, collective: COLLECTIVE_IDS.hashExchange.first, chunk: 0 }, f32Nan)).toBeUndefined();
  });
});

describe('StrategySwitcher.agree (after a re-form)', () => {
  it("every member takes rank 0's strategy and its pending switch: a late joiner learns them", async () => {
    const transports = createMemoryMesh(3);
    const configs = [room({ mode: 'diloco', inner: 10 }), room({ mode: 'diloco', inner: 10 }), room()];
    const switchers = configs.map((config) => new StrategySwitcher({ config, step: () => 20, steps: () => 100, log: () => undefined }));
    (switchers[0] as unknown as { due: unknown }).due = { id: 'a', step: 30, settings: settingsOf(switchedConfig(configs[0], { compression: 'fp16' })) };
    const changed = await Promise.all(switchers.map((s, i) => s.agree(transports[i], 2)));
    expect(changed).toEqual([false, false, true]);
    expect(configs[2]).toMatchObject({ mode: 'diloco', inner: 10, compression: 'none' });
    for (const s of switchers) expect(s.pending()).toMatchObject({ step: 30, settings: { mode: 'ring', compression: 'fp16' } });
    expect(switchers[2].compressionAt(0)).toBe('none');
  });

  it('a room that cannot switch (ZeRO) agrees on its unchanged strategy after a re-form instead of refusing it', async () => {
    const transports = createMemoryMesh(3);
    const configs = [0, 1, 2].map(() => room({ zero: 3 }));
    expect(() => switchedConfig(configs[0], { compression: 'fp16' })).toThrow(/ZeRO/);
    const switchers = configs.map((config) => new StrategySwitcher({ config, step: () => 6, steps: () => 100, log: () => undefined }));
    expect(await Promise.all(switchers.map((s, i) => s.agree(transports[i], 2)))).toEqual([false, false, false]);
    for (const s of switchers) expect(s.pending()).toBeNull();
  });
});

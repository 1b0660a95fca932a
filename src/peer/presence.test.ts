import { describe, expect, it } from 'vitest';
import { FakeNet } from './fake-mesh';
import { encodeFrame } from './frame';
import { encodeJsonMessage } from './json-message';
import { nameProblem, PRESENCE_COLLECTIVE, PresenceBoard, shownNames, type PresenceCard } from './presence';

const card = (name: string, backend: PresenceCard['backend'] = 'webgpu', step = 3, msPerStep = 40): PresenceCard => ({ name, backend, adapter: 'swiftshader', step, msPerStep });

describe('presence cards', () => {
  it('refuses names that are too long or render oddly, and takes any script', () => {
    expect(nameProblem('')).toBeNull();
    expect(nameProblem('Ada Lovelace')).toBeNull();
    expect(nameProblem('Zoë-2')).toBeNull();
    expect(nameProblem('李雷')).toBeNull();
    expect(nameProblem('x'.repeat(33))).toMatch(/at most 32/);
    expect(nameProblem('<b>hi</b>')).toMatch(/letters, digits/);
    expect(nameProblem(' Ada')).toMatch(/starts with a letter/);
  });

  it('lets the earliest tab keep a name and numbers later ones, whatever the case or spacing', () => {
    const shown = shownNames(new Map([['b-2', 'ada'], ['a-1', 'Ada'], ['c-3', 'ADA '], ['d-4', ''], ['e-5', 'Bo']]));
    expect(Object.fromEntries(shown)).toEqual({ 'a-1': 'Ada', 'b-2': 'ada (2)', 'c-3': 'ADA  (3)', 'd-4': '', 'e-5': 'Bo' });
  });

  it('shares cards over the links, tells a later tab once that its name is taken, and refuses a bad card', async () => {
    const net = new FakeNet(['tab-a', 'tab-b']);
    const logs: string[] = [];
    const a = new PresenceBoard(net.node('tab-a'), () => card('Ada'), () => undefined, 20);
    const b = new PresenceBoard(net.node('tab-b'), () => card('Ada', 'cpu', 2, 90), (_, m) => logs.push(m), 20);
    await expect.poll(() => a.cardOf('tab-b')).toEqual({ name: 'Ada (2)', backend: 'cpu', adapter: 'swiftshader', step: 2, msPerStep: 90 });
    await expect.poll(() => b.cardOf('tab-a')?.name).toBe('Ada');
    expect(b.ownName()).toBe('Ada (2)');
    await new Promise((r) => setTimeout(r, 60));
    expect(logs).toEqual(['the name "Ada" is already taken in this room by a tab that joined earlier: you are shown as "Ada (2)" (choose another name with name= in the link)']);
    const header = { type: 'control' as const, roomHash: net.node('tab-a').roomHash, round: 0, collective: PRESENCE_COLLECTIVE, chunk: 0, sender: 0xffff, part: 0, parts: 1 };
    net.node('tab-a').receive('tab-b', encodeFrame(header, encodeJsonMessage({ ...card('Ada'), step: 1.5 })));
    expect(net.node('tab-a').refused).toEqual(['tab-b: presence card refused: bad step']);
    a.close();
    b.close();
  });
});

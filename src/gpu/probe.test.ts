import { it, expect } from 'vitest';
import { testDevice } from './test-device';
import { WebGpuBackend } from './webgpu-backend';
import { viewOf } from '../engine/backend';
it('probe', async () => {
  const ctx = await testDevice();
  const b = await WebGpuBackend.fromContext(ctx, { matmul: 'blocked' });
  const x = viewOf(b.alloc(100, 'x', 'workspace'));
  b.fill(x, 3);
  expect((await b.read(x))[5]).toBe(3);
}, 100_000);

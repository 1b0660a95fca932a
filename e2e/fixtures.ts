// Shared helpers of the mesh e2e tests: open tabs on the app page, wait for `window.lab.mesh`, make
// test vectors that Node and the page generate identically, hash results in the page; and the
// classroom specs' room of tabs, their teacher/student check, and their phone-width check.
import { chromium, expect, type Browser, type BrowserContext, type Locator, type Page } from '@playwright/test';
import { createHash } from 'node:crypto';
import { CHROMIUM_ARGS, requireChromium } from '../scripts/chromium';

export const APP_URL = `http://127.0.0.1:${Number(process.env.LAB_E2E_PORT ?? 5180)}/`;
export const SIGNAL_URL = `ws://127.0.0.1:${Number(process.env.LAB_E2E_SIGNAL_PORT ?? 8790)}`;

/** A room name no other run shares (BroadcastChannel rooms of one browser would otherwise meet). */
export function uniqueRoom(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.floor(Math.random() * 36 ** 4).toString(36)}`.slice(0, 32);
}

/** Opens the app in a tab and waits until the mesh automation hook is installed (no WebGPU needed). */
export async function openMeshTab(context: BrowserContext, label = 'tab'): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`[${label}] page error: ${error.message}`));
  await page.goto(APP_URL);
  await page.waitForFunction(() => typeof (window as unknown as { lab?: { mesh?: unknown } }).lab?.mesh === 'object');
  // A reload after this point wipes the tab's mesh; say so, since the test's own error will only read
  // "execution context was destroyed". (Seen when source files change under a running vite dev server.)
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) console.error(`[${label}] page reloaded during the test (vite HMR or dependency re-optimisation?)`);
  });
  return page;
}

/**
 * A classroom: `count` tabs of a new room (no training) in one 1400 x 1000 context, each page's errors
 * printed with its tab number. The first tab is the one that loads the lesson (the teacher).
 */
export async function openClassroomTabs(browser: Browser, roomPrefix: string, count: number): Promise<{ context: BrowserContext; pages: Page[] }> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const room = uniqueRoom(roomPrefix);
  const pages: Page[] = [];
  for (let i = 0; i < count; i++) {
    const page = await context.newPage();
    page.on('pageerror', (error) => console.error(`[tab ${i}] ${error.message}`));
    await page.goto(`${APP_URL}?room=${room}&world=${count}`);
    pages.push(page);
  }
  return { context, pages };
}

/** The lesson's role line (test id `roleTestId`) names the first tab the teacher and every other one a student. */
export async function expectTeacherFirst(pages: Page[], roleTestId: string): Promise<void> {
  const [teacher, ...students] = pages;
  await expect(teacher.getByTestId(roleTestId)).toHaveAttribute('data-role', 'teacher');
  for (const page of students) await expect(page.getByTestId(roleTestId)).toHaveAttribute('data-role', 'student');
}

/** A one-op-at-a-time classroom lesson as its panel names it (PipelineLessonView, TensorLessonView). */
export interface OpLessonPanel {
  /** The panel's accessible name. */
  region: RegExp;
  loadLabel: string;
  nextLabel: string;
  /** Its test ids' prefix: `pipeline-lesson`, `tensor-lesson`. */
  name: string;
  steps: number;
  /** What its role line calls a rank: "This tab is stage 0 of 2". */
  unit: 'stage' | 'rank';
}

/**
 * The first tab loads the lesson; then every tab shows op 0 of `steps` and every rank's setup row, the
 * first tab teaches, and the others' Next is disabled. Returns the panel of a tab and each tab's rank
 * as its role line says.
 */
export async function loadOpLesson(pages: Page[], panel: OpLessonPanel): Promise<{ lessonOf: (page: Page) => Locator; ranks: number[] }> {
  const lessonOf = (page: Page) => page.getByRole('region', { name: panel.region });
  const [teacher, ...students] = pages;
  await lessonOf(teacher).getByRole('button', { name: panel.loadLabel }).click();
  for (const page of pages) {
    await expect(page.getByTestId(`${panel.name}-step`)).toHaveText(new RegExp(`^Op 0 of ${panel.steps}`));
    await expect(page.locator(`.${panel.name}-setup tr`)).toHaveCount(pages.length);
  }
  await expectTeacherFirst(pages, `${panel.name}-role`);
  for (const page of students) await expect(lessonOf(page).getByRole('button', { name: panel.nextLabel })).toBeDisabled();
  const position = new RegExp(`${panel.unit} (\\d+) of ${pages.length}`);
  const ranks: number[] = [];
  for (const page of pages) ranks.push(Number(position.exec((await page.getByTestId(`${panel.name}-role`).textContent()) ?? '')![1]));
  expect(ranks.slice().sort()).toEqual(pages.map((_, r) => r));
  return { lessonOf, ranks };
}

/** At phone width (390 px) the panel is no wider than itself and the page no wider than the screen; `shot` is taken there. */
export async function expectFitsPhone(page: Page, panel: Locator, shot: { path: string; of: 'page' | 'panel' }): Promise<void> {
  await page.setViewportSize({ width: 390, height: 844 });
  await panel.scrollIntoViewIfNeeded();
  await (shot.of === 'page' ? page : panel).screenshot({ path: shot.path });
  expect(await panel.evaluate((el) => el.scrollWidth - el.clientWidth), 'lesson panel wider than itself at 390 px').toBeLessThanOrEqual(0);
  expect(await page.evaluate(() => document.documentElement.scrollWidth), 'page wider than 390 px').toBeLessThanOrEqual(390);
}

export async function openMeshTabs(context: BrowserContext, count: number): Promise<Page[]> {
  const pages: Page[] = [];
  for (let i = 0; i < count; i++) pages.push(await openMeshTab(context, `tab ${i}`));
  return pages;
}

/** A second, separate Chromium process (its tabs can only meet others through the signalling server). */
export function launchSeparateBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: requireChromium(), args: CHROMIUM_ARGS, headless: true });
}

export interface JoinResult {
  rank: number;
  world: number;
  peerId: string;
  members: string[];
}

/** Every page joins `room` at once and waits for `pages.length` members. On failure, prints each tab's mesh log. */
export async function joinAll(pages: Page[], room: string, opts: { signal?: string; timeoutMs?: number } = {}): Promise<JoinResult[]> {
  try {
    return await Promise.all(
      pages.map((page) =>
        page.evaluate(
          ([room, expect, signal, timeoutMs]) => (window.lab as unknown as MeshWindow).mesh.join(room, { expect, signal, timeoutMs }),
          [room, pages.length, opts.signal, opts.timeoutMs ?? 90_000] as const,
        ),
      ),
    );
  } catch (error) {
    for (const [i, page] of pages.entries()) {
      const log = await page.evaluate(() => (window.lab as unknown as MeshWindow).mesh.status().log).catch(() => ['(tab gone)']);
      console.error(`--- tab ${i} mesh log ---\n${log.join('\n')}`);
    }
    throw error;
  }
}

/**
 * Test vectors, as source text so that the page and Node run the very same code: `kind` 'int' gives
 * integers in [-1000, 1000] (sums of a few are exact in float32, in any order), 'float' gives
 * uniform floats in [-1, 1). Seeded (mulberry32) by `seed`.
 */
export const VECTOR_SOURCE = `(n, seed, kind) => {
  const out = new Float32Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = kind === 'int' ? Math.floor(u * 2001) - 1000 : u * 2 - 1;
  }
  return out;
}`;

type VectorKind = 'int' | 'float';
export const makeVector = new Function(`return ${VECTOR_SOURCE}`)() as (n: number, seed: number, kind: VectorKind) => Float32Array;

export function sha256(data: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex');
}

export interface AllReduceOutcome {
  hash: string;
  /** Every `stride`-th element of the result, for tolerance checks without shipping megabytes. */
  samples: number[];
  ms: number;
}

/**
 * Each page builds its vector (seed = rank + seedBase), all-reduces it over the mesh, and reports the
 * SHA-256 of the result bytes and a strided sample.
 */
export function allReduceAll(pages: Page[], ranks: number[], n: number, kind: VectorKind, seedBase: number, stride = 997): Promise<AllReduceOutcome[]> {
  return Promise.all(
    pages.map((page, i) =>
      page.evaluate(
        async ([source, n, seed, kind, stride]) => {
          const make = (0, eval)(source) as (n: number, seed: number, kind: string) => Float32Array;
          const mesh = (window.lab as unknown as MeshWindow).mesh;
          const t0 = performance.now();
          const result = await mesh.allReduce(make(n, seed, kind));
          const ms = performance.now() - t0;
          const digest = await crypto.subtle.digest('SHA-256', result as Float32Array<ArrayBuffer>);
          const hash = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
          const samples: number[] = [];
          for (let k = 0; k < result.length; k += stride) samples.push(result[k]);
          return { hash, samples, ms };
        },
        [VECTOR_SOURCE, n, ranks[i] + seedBase, kind, stride] as const,
      ),
    ),
  );
}

/** The element-wise sum of every rank's vector, in float64 (exact for 'int' vectors). */
export function expectedSum(world: number, n: number, kind: VectorKind, seedBase: number): Float64Array {
  const sum = new Float64Array(n);
  for (let r = 0; r < world; r++) {
    const v = makeVector(n, r + seedBase, kind);
    for (let i = 0; i < n; i++) sum[i] += v[i];
  }
  return sum;
}

/** The slice of window.lab these tests use (typed loosely: the page's module types are not in scope). */
export interface MeshWindow {
  mesh: {
    join(room: string, opts: { expect?: number; signal?: string; timeoutMs?: number }): Promise<JoinResult>;
    allReduce(values: Float32Array | number[]): Promise<Float32Array>;
    status(): {
      members: string[];
      world: number;
      rank: number;
      refusedFrames: number;
      bytesSent: number;
      peers: { state: string }[];
      log: string[];
    };
    leave(): void;
  };
}

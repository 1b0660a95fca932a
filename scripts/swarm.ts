// The lab's headless main job: `npm run swarm -- --tabs 4 --model mlp --dataset mnist --steps 300`.
// Serves the lab, opens N headless Chromium tabs in one room, trains, shows a progress bar, prints a
// summary and then one last line of JSON; exits non-zero when a tab fails, replicas disagree, or the run
// times out. Every flag but --tabs, --timeout, --backends and --compare is a lab URL setting
// (src/lab/config.ts). --backends webgpu,webgpu,cpu gives each tab its own backend; with --compare
// shares it prints the room-of-unequal-tabs figure (swarm-shares.ts).
// A GPT pipeline without --layers gets one block per stage where the recipe has fewer (it says so).
import { parseArgs } from 'node:util';
import type { Page } from '@playwright/test';
import { DEFAULT_CONFIG, parseConfig, type LabConfig } from '../src/lab/config';
import { runHeadlessJob } from './lab-browser';
import { runSwarm } from './swarm-run';
import { compareRuns, formatComparison, formatSummary, type RunSummary } from './swarm-summary';
import { formatPipelineReport, pipelineReport, type PipelineReport, type PipelineTab } from './swarm-pipeline';
import { pipelineMicroBatches } from '../src/lab/config';
import { defaults } from '../src/train/defaults';
import type { PipelineFigures } from '../src/lab/partitioned-run';
import { formatSharesFigure, sharesFigure } from './swarm-shares';
import { formatTensorReport, tensorReport, type TensorReport, type TensorTab } from './swarm-tensor';
import { expertReport, formatExpertReport, type ExpertReport, type ExpertTab } from './swarm-expert';
import type { ExpertFigures, TensorFigures } from '../src/lab/partitioned-run';

const CONFIG_KEYS = Object.keys(DEFAULT_CONFIG).filter((key) => !['room', 'world', 'autostart'].includes(key));

function parseCli(argv: string[]) {
  const options: Record<string, { type: 'string' }> = {};
  for (const key of [...CONFIG_KEYS, 'tabs', 'timeout', 'compare', 'backends']) options[key] = { type: 'string' };
  const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  const tabs = Number(values.tabs ?? '1');
  if (!Number.isInteger(tabs) || tabs < 1 || tabs > 16) throw new Error('--tabs must be an integer from 1 to 16');
  const timeoutSec = Number(values.timeout ?? '1800');
  const entries: [string, string][] = CONFIG_KEYS.filter((key) => values[key] !== undefined).map((key) => [
    key,
    String(values[key]),
  ]);
  // Nobody sees a headless tab: no dashboards unless asked for (--dashboard 1), as a browser stops
  // drawing the tabs in the background (four of them cost a fifth of the speed on two cores).
  // A GPT pipeline needs a block per stage: without --layers, one per stage where the recipe has fewer
  // (the solo reference below trains the same blocks, so parity is against the same model).
  const stagesWanted = Number(values.pipeline ?? '1');
  if (values.model === 'gpt' && values.layers === undefined && stagesWanted > defaults.sotu.model.nLayer) {
    entries.push(['layers', String(stagesWanted)]);
    console.log(`--pipeline ${stagesWanted}: the GPT recipe has ${defaults.sotu.model.nLayer} blocks, so this run uses --layers ${stagesWanted} (one block per stage)`);
  }
  const config = parseConfig([['dashboard', '0'], ...entries, ['world', String(tabs)], ['autostart', '1']]);
  const compare = values.compare as string | undefined;
  if (compare !== undefined && compare !== 'none' && compare !== 'dense' && compare !== 'shares') {
    throw new Error('--compare takes "dense" (a second run without compression) or "shares" (solo runs, shares=equal and shares=auto)');
  }
  const backends = values.backends === undefined ? undefined : String(values.backends).split(',');
  if (backends && (backends.length !== tabs || backends.some((b) => !['auto', 'webgpu', 'cpu'].includes(b)))) {
    throw new Error(`--backends takes one of auto, webgpu, cpu per tab, comma-separated (${tabs} of them), got "${values.backends}"`);
  }
  if (compare === 'shares' && tabs < 2) throw new Error('--compare shares needs a room: --tabs 2 or more');
  return { tabs, timeoutSec, config, backends, compareDense: compare === 'dense', compareShares: compare === 'shares' };
}

async function main(): Promise<void> {
  const { tabs, timeoutSec, config, backends, compareDense, compareShares } = parseCli(process.argv.slice(2));
  await runHeadlessJob('swarm', async (serverUrl) => {
    if (compareShares) {
      const kinds = backends ?? Array.from({ length: tabs }, () => config.backend);
      const solo: Record<string, RunSummary> = {};
      for (const backend of new Set(kinds)) {
        console.log(`\nsolo: one ${backend} tab on the same global batch`);
        solo[backend] = await runSwarm(serverUrl, 1, { ...config, backend: backend as LabConfig['backend'] }, timeoutSec);
      }
      console.log('\nthe room, shares=equal');
      const equal = await runSwarm(serverUrl, tabs, { ...config, shares: 'equal' }, timeoutSec, { backends: kinds });
      console.log('\nthe room, shares=auto');
      const auto = await runSwarm(serverUrl, tabs, { ...config, shares: 'auto' }, timeoutSec, { backends: kinds });
      for (const run of [...Object.values(solo), equal, auto]) console.log(formatSummary(run));
      const figure = sharesFigure(kinds, solo, equal, auto);
      console.log(`\n${formatSharesFigure(figure)}`);
      return { ok: figure.replicasAgree, json: { solo, equal, auto, figure } };
    }
    const runs: RunSummary[] = [];
    let pipelineTabs: PipelineTab[] = [];
    const readPipeline = async (pages: Page[]) => {
      pipelineTabs = await Promise.all(pages.map((page) => page.evaluate(async () => ({ figures: window.lab.metrics().partition as PipelineFigures, params: await window.lab.params() }))));
    };
    let tensorTabs: TensorTab[] = [];
    const readTensor = async (pages: Page[]) => {
      tensorTabs = await Promise.all(pages.map((page) => page.evaluate(async () => ({ figures: window.lab.metrics().partition as TensorFigures, params: await window.lab.params() }))));
    };
    let expertTabs: ExpertTab[] = [];
    const readExperts = async (pages: Page[]) => {
      expertTabs = await Promise.all(pages.map((page) => page.evaluate(async () => ({ figures: window.lab.metrics().partition as ExpertFigures, params: await window.lab.params() }))));
    };
    const collect = config.pipeline > 1 ? readPipeline : config.tensor > 1 ? readTensor : config.experts > 1 ? readExperts : undefined;
    runs.push(await runSwarm(serverUrl, tabs, config, timeoutSec, { backends, ...(collect ? { collect } : {}) }));
    let pipeline: PipelineReport | null = null;
    if (config.pipeline > 1) {
      // The reference: one tab on the same global batch, in the same M micro-batches (gradient accumulation).
      console.log('\nreference: one tab, the same global batch in the same micro-batches');
      const solo: LabConfig = { ...config, room: '', pipeline: 1, micro: 0, ahead: 0, accum: pipelineMicroBatches(config) };
      let reference: number[] = [];
      await runSwarm(serverUrl, 1, solo, timeoutSec, {
        collect: async ([page]) => {
          reference = await page.evaluate(() => window.lab.params());
        },
      });
      pipeline = pipelineReport(pipelineTabs, reference);
    }
    let tensor: TensorReport | null = null;
    if (config.tensor > 1) {
      console.log('\nreference: one tab, the same global batch in the same micro-batches');
      let reference: number[] = [];
      await runSwarm(serverUrl, 1, { ...config, room: '', tensor: 1 }, timeoutSec, {
        collect: async ([page]) => {
          reference = await page.evaluate(() => window.lab.params());
        },
      });
      tensor = tensorReport(tensorTabs, reference);
    }
    let experts: ExpertReport | null = null;
    if (config.experts > 1) {
      console.log('\nreference: one tab holding every expert, the same global batch routed as one capacity group per tab');
      let reference: number[] = [];
      await runSwarm(serverUrl, 1, { ...config, room: '', ep: 0, routegroups: tabs }, timeoutSec, {
        collect: async ([page]) => {
          reference = await page.evaluate(() => window.lab.params());
        },
      });
      experts = expertReport(expertTabs, reference);
    }
    if (compareDense && config.compression !== 'none') {
      console.log(`\nbaseline: the same run without compression`);
      runs.push(await runSwarm(serverUrl, tabs, { ...config, compression: 'none' }, timeoutSec));
    }
    for (const run of runs) console.log(formatSummary(run));
    if (runs.length === 2) console.log(formatComparison(runs[0], runs[1]));
    if (pipeline) console.log('\n' + formatPipelineReport(pipeline));
    if (tensor) console.log('\n' + formatTensorReport(tensor));
    if (experts) console.log('\n' + formatExpertReport(experts));
    const agree = !runs.some((run) => run.replicasAgree === false);
    if (!agree) console.error('FAILED: replicas disagree');
    const json = runs.length === 1 ? runs[0] : { runs, comparison: compareRuns(runs[0], runs[1]) };
    return { ok: agree, json: pipeline ? { run: json, pipeline } : tensor ? { run: json, tensor } : experts ? { run: json, experts } : json };
  });
}

void main();

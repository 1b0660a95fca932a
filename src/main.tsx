// The page: read the run from the URL, create the event bus and the store, expose `window.lab` for
// scripts, draw the dashboard, and start training at once when autostart=1.
import { createRoot } from 'react-dom/client';
import { ConfigError, DEFAULT_CONFIG, parseConfig, type LabConfig } from './lab/config';
import { EventBus } from './shared/events';
import { LabControllerImpl } from './lab/lab-controller';
import { readLabServerInfo, withDiscoveredSignal } from './lab/lab-server';
import { installMeshApi } from './peer/mesh-api';
import { connectBus, createLabStore } from './store/lab-store';
import { App } from './ui/App';

function configFromUrl(): { config: LabConfig; problem: string | null } {
  try {
    return { config: parseConfig(new URLSearchParams(location.search).entries()), problem: null };
  } catch (error) {
    if (error instanceof ConfigError) return { config: DEFAULT_CONFIG, problem: `Bad URL setting: ${error.message}` };
    throw error;
  }
}

const fromUrl = configFromUrl();
const problem = fromUrl.problem;
// The signalling of the lab's own server when it serves this page and says to use it (lab-server.ts).
const config = withDiscoveredSignal(fromUrl.config, readLabServerInfo(document), location);
const bus = new EventBus();
const store = createLabStore(config);
connectBus(store, bus);

const controller = new LabControllerImpl({ bus, gpu: navigator.gpu }, config, (room) => {
  const url = new URL(location.href);
  url.searchParams.set('room', room);
  history.replaceState(null, '', url);
});

const lab = controller.api() as Window['lab'];
window.lab = lab;
installMeshApi(lab, { bus });

if (problem) bus.publish({ type: 'log', level: 'error', message: problem, t: performance.now() });
if (!navigator.gpu) {
  bus.publish({
    type: 'log',
    level: 'warn',
    message: 'This browser has no WebGPU: the lab trains on its CPU backend (WebAssembly SIMD where the browser has it), marked as such.',
    t: performance.now(),
  });
}

createRoot(document.getElementById('root')!).render(
  config.dashboard ? (
    <App store={store} controller={controller} />
  ) : (
    <p className="dashboard-off">Dashboard off (dashboard=0): this tab trains and answers window.lab.</p>
  ),
);

if (config.autostart && !problem) void controller.start(config);

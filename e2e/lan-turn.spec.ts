// A class on a network that blocks direct traffic between students: each student's machine (a network
// namespace) sits behind the teacher's machine on a network of its own, and the teacher's machine
// forwards nothing between them. The teacher runs coturn (Debian's `turnserver`, REST-API shared
// secret) and the lab server, which hands pages time-limited TURN credentials. With a wrong secret the
// students' pages must say that the TURN server refused the credentials; with the right one the room
// trains through the relay (the peers table says `relay`) and ends equal to one tab.
import { expect, test, type Page } from '@playwright/test';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { startLabServer, tcpProbe, HTTPS_PORT } from './class-network';
import { uniqueRoom } from './fixtures';
import { lanMachinesPerTest } from './lan-machines';
import { type Machine, type NamespaceLab, namespacesUnavailable } from './netns';
import { finishTraining, maxRelativeDifference, openTrainingTabs } from './training';

const RUN = { model: 'mlp', dataset: 'spirals', steps: 20, batch: 64, seed: 3 };
const TOLERANCE = 1e-6;
const TURN_SECRET = 'lab-e2e-turn-secret';
const machines = lanMachinesPerTest();

function turnserverMissing(): string | null {
  try {
    execFileSync('sh', ['-c', 'command -v turnserver'], { stdio: 'ignore' });
    return null;
  } catch {
    return 'coturn is missing: apt-get install coturn';
  }
}

/** coturn on the teacher's address, REST-API auth with the shared secret; resolves once it listens. */
function startTurn(lab: NamespaceLab, teacher: Machine): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const output: string[] = [];
    const timer = setTimeout(() => reject(new Error(`coturn did not start within 30 s:\n${output.join('\n')}`)), 30_000);
    const child = lab.spawn(
      teacher,
      ['turnserver', '-n', `--listening-ip=${teacher.address}`, '--listening-port=3478', '--use-auth-secret', `--static-auth-secret=${TURN_SECRET}`,
        '--realm=lab', '--no-tls', '--no-dtls', '--no-cli', '--min-port=49200', '--max-port=49400', '--log-file=stdout', '--simple-log'],
      (line) => {
        output.push(line);
        if (/listener opened on|Total General servers/i.test(line)) {
          clearTimeout(timer);
          resolve(child);
        }
      },
    );
    child.on('exit', (code) => reject(new Error(`coturn exited (${code}):\n${output.join('\n')}`)));
  });
}

async function openInEach(students: Machine[], spki: string, link: string): Promise<Page[]> {
  const pages: Page[] = [];
  for (const student of students) {
    const page = await machines.pageIn(student, spki);
    await page.goto(link);
    pages.push(page);
  }
  return pages;
}

test('students who cannot reach each other train through the TURN relay; a wrong TURN secret is named in the page', async ({ browser }) => {
  // Never a silent pass: where machines or coturn are missing, the test fails and says why.
  expect(namespacesUnavailable(), 'network namespaces are required for the across-machines tests').toBeNull();
  expect(turnserverMissing(), 'coturn is required for the TURN test').toBeNull();

  const solo = await browser.newContext();
  const [reference] = await finishTraining(await openTrainingTabs(solo, 1, RUN));
  await solo.close();

  const lab = machines.start(`lt${process.pid % 100000}`, '10.79.0');
  const teacher = lab.addMachine('t', 1);
  const students = [lab.addMachineBehind(teacher, 's1', '10.79.1'), lab.addMachineBehind(teacher, 's2', '10.79.2')];
  await startTurn(lab, teacher);
  const certDir = `${lab.scratchDir}/cert`;
  const turnArgs = ['--turn', `turn:${teacher.address}:3478?transport=udp`];
  const linkFor = (room: string) =>
    `https://${teacher.address}:${HTTPS_PORT}/?${new URLSearchParams({ room, ...Object.fromEntries(Object.entries(RUN).map(([k, v]) => [k, String(v)])), world: '2', autostart: '1' })}`;

  // A lab server whose secret is not coturn's: the pages must say so.
  const wrong = await startLabServer(lab, teacher, { certDir, extraArgs: turnArgs, env: { LAB_TURN_SECRET: 'not-the-secret' } });
  // The network is what it claims: students reach the teacher's machine, never each other.
  expect(tcpProbe(students[0], teacher.address, HTTPS_PORT)).toBe('open');
  expect(tcpProbe(students[0], students[1].address, 9)).toBe('unreachable');
  expect(tcpProbe(students[1], students[0].address, 9)).toBe('unreachable');
  const refused = await openInEach(students, wrong.spki, linkFor(uniqueRoom('turn-bad')));
  await expect(refused[0].getByText(/TURN server turn:10\.79\.0\.1:3478\?transport=udp refused the credentials \(401/).first()).toBeVisible({ timeout: 60_000 });
  await machines.closeBrowsers();
  await lab.stop(wrong.server);

  // The right secret: the relay is the only path, and the room trains through it.
  const right = await startLabServer(lab, teacher, { certDir, extraArgs: turnArgs, env: { LAB_TURN_SECRET: TURN_SECRET } });
  expect(right.spki).toBe(wrong.spki); // the certificate made on first start is reused
  const pages = await openInEach(students, right.spki, linkFor(uniqueRoom('turn')));
  for (const page of pages) await expect(page.locator('[data-testid^="path-"]')).toHaveText('relay', { timeout: 90_000 });
  const results = await finishTraining(pages);
  for (const r of results) {
    expect(r.status.world).toBe(2);
    expect(r.status.step).toBe(RUN.steps);
    expect(r.metrics.hashesAgree).toBe(true);
    expect(r.hash).toBe(results[0].hash);
  }
  const difference = maxRelativeDifference(reference.params, results[0].params);
  console.log(`2 students through TURN vs 1 tab: max relative parameter difference ${difference.toExponential(2)}`);
  expect(difference).toBeLessThan(TOLERANCE);
});

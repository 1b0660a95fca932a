// `npm start`: the lab for this machine and for a class, in one command.
// - http://127.0.0.1:PORT for this machine's own tabs (loopback is a secure context: WebGPU works);
// - https://<LAN address>:HTTPS_PORT for other machines, with the user's certificate or a self-signed
//   one made on first start and reused (lab-certificate.ts), so their pages are secure contexts too;
// - the signalling server on both, at /signal (lab-server-plugin.ts), which every page served here
//   uses by itself, and whose /signal/ice hands out the STUN/TURN servers given here.
// It prints every LAN URL, the certificate's fingerprints and a QR code of the class URL.
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import QRCode from 'qrcode';
import { createServer } from 'vite';
import { labViteConfig } from '../vite.config';
import { loadOrCreateCertificate } from './lab-certificate';
import { labServerPlugin } from './lab-server-plugin';
import { chooseLanAddress, httpsUrl, lanAddresses } from './lan';
import { parseStartArgs, START_USAGE } from './start-args';

function listen(server: HttpsServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'EADDRINUSE' ? new Error(`port ${port} on ${host} is in use: pick another with --https-port`) : error),
    );
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

async function main(): Promise<void> {
  const opts = parseStartArgs(process.argv.slice(2), process.env);
  if (opts === 'help') {
    console.log(START_USAGE);
    return;
  }
  const addresses = lanAddresses();
  const lan = opts.httpsPort === 0 ? null : chooseLanAddress(addresses, opts.lanAddress);
  const certificate =
    opts.httpsPort === 0
      ? null
      : await loadOrCreateCertificate({
          certFile: opts.certFile,
          keyFile: opts.keyFile,
          dir: opts.certDir,
          hosts: [...new Set(['localhost', '127.0.0.1', ...addresses.map((a) => a.address), ...(lan ? [lan] : [])])],
        });

  let httpPort = opts.port;
  let httpsPort = opts.httpsPort;
  const lanHosts = [...new Set([...addresses.map((a) => a.address), ...(lan ? [lan] : [])])];
  const plugin = labServerPlugin({
    discover: true,
    // Set once the HTTPS port is known (below); read by the page on each load.
    shareOrigin: null,
    allowOrigins: () => [
      ...['127.0.0.1', 'localhost'].map((h) => `http://${h}:${httpPort}`),
      ...(certificate ? ['127.0.0.1', 'localhost', ...lanHosts].map((h) => httpsUrl(h, httpsPort).slice(0, -1)) : []),
      ...opts.allowOrigins,
    ],
    ice: opts.ice,
    log: (line) => console.log(`[signal] ${line}`),
  });
  const base = labViteConfig(plugin);
  const vite = await createServer({
    ...base,
    configFile: false,
    ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
    // A served page must never reload itself mid-run (hot reload is for `npm run dev`).
    server: { ...base.server, port: opts.port, strictPort: true, hmr: false, allowedHosts: lanHosts },
  });
  await vite.listen();
  httpPort = (vite.httpServer!.address() as AddressInfo).port;

  let https: HttpsServer | null = null;
  if (certificate) {
    https = createHttpsServer({ cert: certificate.cert, key: certificate.key }, vite.middlewares);
    plugin.attach(https);
    httpsPort = await listen(https, opts.httpsPort, opts.host);
    plugin.setShareOrigin(lan ? httpsUrl(lan, httpsPort).slice(0, -1) : null);
  }

  console.log(`\n  WebGPU training lab`);
  console.log(`  this machine:  http://127.0.0.1:${httpPort}/`);
  if (certificate && https) {
    for (const a of addresses) console.log(`  LAN (${a.iface}):${' '.repeat(Math.max(1, 10 - a.iface.length))}${httpsUrl(a.address, httpsPort)}`);
    if (lan && !addresses.some((a) => a.address === lan)) console.log(`  LAN (chosen):  ${httpsUrl(lan, httpsPort)}`);
    console.log(`  certificate:   ${certificate.origin} ${certificate.certFile} (valid to ${certificate.validTo})`);
    console.log(`    SHA-256:     ${certificate.certSha256}`);
    console.log(`    SPKI SHA-256 (base64): ${certificate.spkiSha256}`);
    if (certificate.origin !== 'given') {
      console.log('    self-signed: each browser asks once to accept it; check the SHA-256 above in its certificate viewer.');
    }
    if (lan) {
      const classUrl = httpsUrl(lan, httpsPort);
      console.log(`\n  Students open ${classUrl} (rooms created on this machine link there):\n`);
      console.log(await QRCode.toString(classUrl, { type: 'terminal', small: true }));
    } else {
      console.log('\n  No LAN address found: only this machine can open the lab (give one with --lan-address).');
    }
  }
  const ice = [...opts.ice.stun, ...opts.ice.turn];
  console.log(`  signalling:    /signal on every URL above; ICE servers for pages: ${ice.length ? ice.join(', ') : 'none (LAN only)'}`);
  console.log('  Ctrl-C stops.\n');

  const stop = async () => {
    await Promise.all([vite.close(), new Promise<void>((done) => (https ? https.close(() => done()) : done())), plugin.close()]);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

main().catch((error: unknown) => {
  console.error(`npm start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});

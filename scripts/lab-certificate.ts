// The HTTPS certificate of `npm start`'s LAN server. Browsers expose WebGPU only to secure contexts, so
// a page that other machines open must come over HTTPS. Either the user's own certificate (--cert and
// --key, e.g. made with mkcert so that browsers trust it), or a self-signed one generated on first
// start with `selfsigned`, kept in a git-ignored folder and reused on later starts, so that its
// fingerprint (what students compare, or what a test tells Chromium to trust) stays the same.
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { generate } from 'selfsigned';

export interface LabCertificate {
  cert: string;
  key: string;
  /** Base64 SHA-256 of the certificate's SubjectPublicKeyInfo: Chromium's --ignore-certificate-errors-spki-list form. */
  spkiSha256: string;
  /** Colon-separated hex SHA-256 of the whole certificate, as browsers show it. */
  certSha256: string;
  origin: 'given' | 'generated' | 'reused';
  /** Where the PEM files are. */
  certFile: string;
  keyFile: string;
  validTo: string;
}

export const DEFAULT_CERT_DIR = '.lab-cert';
const CERT_NAME = 'lab-cert.pem';
const KEY_NAME = 'lab-key.pem';
/** A school year and then some: a generated certificate is replaced once it has expired. */
const VALID_DAYS = 400;

export function spkiSha256(cert: X509Certificate): string {
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

/** Parses a PEM pair and checks that the key belongs to the certificate; throws a message naming the files. */
function check(certPem: string, keyPem: string, certFile: string, keyFile: string, origin: LabCertificate['origin']): LabCertificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (error) {
    throw new Error(`${certFile} is not a PEM certificate (${error instanceof Error ? error.message : String(error)})`);
  }
  let matches: boolean;
  try {
    matches = cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch (error) {
    throw new Error(`${keyFile} is not a PEM private key (${error instanceof Error ? error.message : String(error)})`);
  }
  if (!matches) throw new Error(`${keyFile} is not the private key of ${certFile}`);
  return { cert: certPem, key: keyPem, spkiSha256: spkiSha256(cert), certSha256: cert.fingerprint256, origin, certFile, keyFile, validTo: cert.validTo };
}

function read(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`cannot read the ${what} ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

export interface CertificateRequest {
  /** The user's own PEM files; both or neither. */
  certFile?: string;
  keyFile?: string;
  /** Folder of the generated certificate. */
  dir?: string;
  /** Names and addresses put in a generated certificate (its subjectAltName). */
  hosts: readonly string[];
  now?: Date;
}

/** The user's certificate, the one generated earlier (while valid), or a new one. */
export async function loadOrCreateCertificate(request: CertificateRequest): Promise<LabCertificate> {
  const { certFile, keyFile } = request;
  if ((certFile === undefined) !== (keyFile === undefined)) throw new Error('give both --cert and --key, or neither');
  if (certFile !== undefined && keyFile !== undefined) {
    return check(read(certFile, 'certificate'), read(keyFile, 'private key'), certFile, keyFile, 'given');
  }
  const dir = request.dir ?? DEFAULT_CERT_DIR;
  const ownCert = join(dir, CERT_NAME);
  const ownKey = join(dir, KEY_NAME);
  const now = request.now ?? new Date();
  if (existsSync(ownCert) && existsSync(ownKey)) {
    const kept = check(read(ownCert, 'certificate'), read(ownKey, 'private key'), ownCert, ownKey, 'reused');
    if (new Date(kept.validTo) > now) return kept;
  }
  const altNames = request.hosts.map((host) => (isIP(host) ? { type: 7 as const, ip: host } : { type: 2 as const, value: host }));
  const made = await generate([{ name: 'commonName', value: 'WebGPU training lab' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 60_000),
    notAfterDate: new Date(now.getTime() + VALID_DAYS * 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(ownCert, made.cert, { mode: 0o644 });
  writeFileSync(ownKey, made.private, { mode: 0o600 });
  return check(made.cert, made.private, ownCert, ownKey, 'generated');
}

import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadOrCreateCertificate } from './lab-certificate';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'lab-cert-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('the LAN server certificate', () => {
  it('is generated once with the LAN names in it, then reused with the same fingerprint', async () => {
    const dir = join(tempDir(), 'certs');
    const first = await loadOrCreateCertificate({ dir, hosts: ['localhost', '127.0.0.1', '10.7.0.1'] });
    expect(first.origin).toBe('generated');
    const san = new X509Certificate(first.cert).subjectAltName ?? '';
    expect(san).toContain('IP Address:10.7.0.1');
    expect(san).toContain('DNS:localhost');
    expect(first.spkiSha256).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    const again = await loadOrCreateCertificate({ dir, hosts: ['10.9.9.9'] });
    expect(again.origin).toBe('reused');
    expect(again.spkiSha256).toBe(first.spkiSha256);
  });

  it('is replaced once expired', async () => {
    const dir = tempDir();
    const first = await loadOrCreateCertificate({ dir, hosts: ['localhost'] });
    const later = await loadOrCreateCertificate({ dir, hosts: ['localhost'], now: new Date(Date.now() + 500 * 86_400_000) });
    expect(later.origin).toBe('generated');
    expect(later.spkiSha256).not.toBe(first.spkiSha256);
  });

  it("takes the user's own pair, and says clearly what is wrong with a bad one", async () => {
    const dir = tempDir();
    const a = await loadOrCreateCertificate({ dir: join(dir, 'a'), hosts: ['localhost'] });
    const b = await loadOrCreateCertificate({ dir: join(dir, 'b'), hosts: ['localhost'] });
    const given = await loadOrCreateCertificate({ certFile: a.certFile, keyFile: a.keyFile, hosts: [] });
    expect(given).toMatchObject({ origin: 'given', spkiSha256: a.spkiSha256 });
    await expect(loadOrCreateCertificate({ certFile: a.certFile, hosts: [] })).rejects.toThrow('give both --cert and --key');
    await expect(loadOrCreateCertificate({ certFile: a.certFile, keyFile: b.keyFile, hosts: [] })).rejects.toThrow(/is not the private key of/);
    await expect(loadOrCreateCertificate({ certFile: join(dir, 'none.pem'), keyFile: a.keyFile, hosts: [] })).rejects.toThrow(/cannot read the certificate/);
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'hello');
    await expect(loadOrCreateCertificate({ certFile: junk, keyFile: a.keyFile, hosts: [] })).rejects.toThrow(/is not a PEM certificate/);
    expect(readFileSync(a.keyFile, 'utf8')).toContain('PRIVATE KEY');
  });
});

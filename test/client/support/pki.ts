// Throwaway CAs and certificates for the client tests, made with the project's own issuance code.
import { type KeyObject, X509Certificate } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toPem } from '../../../src/est/base64.js';
import { parseCsr } from '../../../src/est/csr.js';
import { buildCsr } from '../../../src/est/csr-build.js';
import { buildGeneralNames, buildName } from '../../../src/est/name.js';
import { OID } from '../../../src/est/oids.js';
import { describeSpki } from '../../../src/est/spki.js';
import { type CaMaterial, type ServerTls, createRootCa, ensureServerTls } from '../../../src/pki/ca.js';
import { Signer } from '../../../src/pki/issuance.js';
import { generateKey, privateKeyPem, spkiDer } from '../../../src/pki/keys.js';

export interface TestCa {
  ca: CaMaterial;
  signer: Signer;
  pem: string;
  file: string;
  der: Buffer;
}

export async function makeCa(dir: string, cn: string): Promise<TestCa> {
  const ca = await createRootCa(cn, join(dir, cn.replace(/\W+/g, '-')), { subject: [['CN', cn]], days: 3650 });
  const pem = toPem('CERTIFICATE', ca.certDer);
  const file = join(dir, `${cn.replace(/\W+/g, '-')}.pem`);
  await writeFile(file, pem);
  return { ca, signer: new Signer(ca), pem, file, der: ca.certDer };
}

/** A scratch folder, a root CA in it, and a TLS server certificate (localhost, 127.0.0.1) from that root. */
export async function tlsFixture(prefix: string, cn: string): Promise<{ dir: string; ca: TestCa; tls: ServerTls }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const ca = await makeCa(dir, cn);
  return { dir, ca, tls: await ensureServerTls(join(dir, 'tls'), ca.ca) };
}

export interface IssueOptions {
  /** Validity; fractions of a day are fine. */
  days?: number;
  /** Issue as of this time (certificates in the past or future). */
  now?: number;
  ca?: boolean;
}

/** Issues for a CSR as an EST server would: subject and SAN copied, clientAuth. */
export function issueForCsr(ca: TestCa, csrDer: Buffer, o: IssueOptions = {}): Buffer {
  const csr = parseCsr(csrDer);
  const san = csr.subjectAltNames.length ? { subjectAltNameDer: buildGeneralNames(csr.subjectAltNames) } : {};
  return ca.signer.issue(
    { subjectDer: csr.subjectDer, spki: csr.spki, key: csr.key, validityDays: o.days ?? 30, extKeyUsage: [OID.clientAuth], ...san, ...(o.ca || csr.basicConstraints?.ca ? { ca: {} } : {}) },
    new Date(o.now ?? Date.now()),
  ).der;
}

export interface TestPair {
  key: KeyObject;
  keyPem: string;
  der: Buffer;
  certPem: string;
  certFile: string;
  keyFile: string;
}

/** A key and a certificate for `cn` from `ca`, written to DIR/NAME.{cert,key}.pem. */
export async function makePair(ca: TestCa, cn: string, dir: string, name: string, o: IssueOptions = {}): Promise<TestPair> {
  const key = await generateKey('p256');
  const der = ca.signer.issue(
    { subjectDer: buildName([['CN', cn]]), spki: spkiDer(key), key: describeSpki(spkiDer(key)), validityDays: o.days ?? 30, extKeyUsage: [OID.clientAuth] },
    new Date(o.now ?? Date.now()),
  ).der;
  const certPem = toPem('CERTIFICATE', der);
  const keyPem = privateKeyPem(key);
  const certFile = join(dir, `${name}.cert.pem`);
  const keyFile = join(dir, `${name}.key.pem`);
  await writeFile(certFile, certPem);
  await writeFile(keyFile, keyPem, { mode: 0o600 });
  return { key, keyPem, der, certPem, certFile, keyFile };
}

export async function makeCsrDer(cn: string, key?: KeyObject): Promise<{ key: KeyObject; der: Buffer }> {
  const k = key ?? (await generateKey('p256'));
  return { key: k, der: buildCsr({ subject: buildName([['CN', cn]]), privateKey: k }) };
}

export const subjectOf = (pem: string | Buffer): string => new X509Certificate(pem).subject;

// CA material on disk: create a root or a subordinate, load and check one,
// and the gateway's own TLS server certificate.
import { X509Certificate, createHash, type KeyObject } from 'node:crypto';
import { mkdir, readFile, readdir, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fromPemAll, toPem } from '../est/base64.js';
import { type CertFields, parseCertificate } from '../est/certificate.js';
import { buildGeneralNames, buildName, type GeneralName } from '../est/name.js';
import { OID } from '../est/oids.js';
import { describeSpki } from '../est/spki.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { Signer, selfSign } from './issuance.js';
import { issuedBy } from './issued-by.js';
import { type KeySpec, generateKey, loadPrivateKey, privateKeyPem, spkiDer } from './keys.js';

export interface CaMaterial {
  name: string;
  certDer: Buffer;
  cert: X509Certificate;
  fields: CertFields;
  key: KeyObject;
  /** This CA's certificate, then its issuers up to and including the self-signed root. */
  chain: Buffer[];
  /** Earlier generations of this CA (replaced, still valid): what they issued still renews. */
  previous?: Buffer[];
}

export const CA_CERT_FILE = 'ca.cert.pem';
export const CA_KEY_FILE = 'ca.key.pem';
export const CA_CHAIN_FILE = 'chain.pem';
/** A replaced CA directory is kept as DIR.replaced-TIME (see replaceSubordinateCa). */
export const REPLACED_SUFFIX = '.replaced-';

const exists = (p: string) => stat(p).then(() => true, () => false);

export class CaLoadError extends Error {}

/** Checks that the chain links up to a self-signed root and that the key matches. */
export function assembleCa(name: string, certDer: Buffer, key: KeyObject, issuers: Buffer[]): CaMaterial {
  const cert = new X509Certificate(certDer);
  const fields = parseCertificate(certDer);
  if (!fields.basicConstraints?.ca) throw new CaLoadError(`CA "${name}": certificate is not a CA (basicConstraints CA:TRUE missing)`);
  if (!spkiDer(key).equals(fields.spki)) throw new CaLoadError(`CA "${name}": private key does not match the certificate`);
  const chain = [certDer, ...issuers];
  for (let i = 0; i < chain.length; i++) {
    const c = new X509Certificate(chain[i]!);
    const issuer = i + 1 < chain.length ? new X509Certificate(chain[i + 1]!) : c;
    if (!issuedBy(c, issuer)) {
      throw new CaLoadError(`CA "${name}": chain is broken at "${c.subject.replace(/\n/g, ', ')}"`);
    }
    if (i + 1 === chain.length && c.subject !== c.issuer) {
      throw new CaLoadError(`CA "${name}": chain does not end in a self-signed root`);
    }
  }
  return { name, certDer, cert, fields, key, chain };
}

export async function loadCa(name: string, dir: string): Promise<CaMaterial> {
  const certs = fromPemAll(await readFile(join(dir, CA_CERT_FILE), 'utf8'), 'CERTIFICATE');
  if (certs.length === 0) throw new CaLoadError(`CA "${name}": no certificate in ${join(dir, CA_CERT_FILE)}`);
  const key = loadPrivateKey(await readFile(join(dir, CA_KEY_FILE)));
  const chainFile = join(dir, CA_CHAIN_FILE);
  const issuers = (await exists(chainFile)) ? fromPemAll(await readFile(chainFile, 'utf8'), 'CERTIFICATE') : certs.slice(1);
  return assembleCa(name, certs[0]!, key, issuers);
}

/** Certificates of replaced generations of the CA in `dir` that are still valid. */
export async function previousGenerations(dir: string, now = Date.now()): Promise<Buffer[]> {
  const parent = dirname(dir);
  const prefix = `${basename(dir)}${REPLACED_SUFFIX}`;
  const names = (await readdir(parent).catch(() => [] as string[])).filter((n) => n.startsWith(prefix));
  const out: Buffer[] = [];
  for (const n of names) {
    const cert = fromPemAll(await readFile(join(parent, n, CA_CERT_FILE), 'utf8').catch(() => ''), 'CERTIFICATE')[0];
    if (cert && Date.parse(new X509Certificate(cert).validTo) > now) out.push(cert);
  }
  return out;
}

export async function caExists(dir: string): Promise<boolean> {
  return exists(join(dir, CA_CERT_FILE));
}

export async function storeCa(dir: string, certDer: Buffer, key: KeyObject, issuers: Buffer[]): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // key first: a cert file without its key is never left behind
  await writeFileAtomic(join(dir, CA_KEY_FILE), privateKeyPem(key), 0o600);
  await writeFileAtomic(join(dir, CA_CHAIN_FILE), issuers.map((d) => toPem('CERTIFICATE', d)).join(''));
  await writeFileAtomic(join(dir, CA_CERT_FILE), toPem('CERTIFICATE', certDer));
}

export interface NewCaOptions {
  subject: Array<[string, string]>;
  keySpec?: KeySpec;
  days: number;
  pathLen?: number;
}

export async function createRootCa(name: string, dir: string, o: NewCaOptions): Promise<CaMaterial> {
  const key = await generateKey(o.keySpec ?? 'p256');
  const spki = spkiDer(key);
  const certDer = selfSign({ subjectDer: buildName(o.subject), key, spki, days: o.days, ...(o.pathLen === undefined ? {} : { pathLen: o.pathLen }) });
  await storeCa(dir, certDer, key, []);
  return assembleCa(name, certDer, key, []);
}

export async function createSubordinateCa(name: string, dir: string, parent: CaMaterial, o: NewCaOptions): Promise<CaMaterial> {
  const key = await generateKey(o.keySpec ?? 'p256');
  const spki = spkiDer(key);
  const issued = new Signer(parent).issue({
    subjectDer: buildName(o.subject),
    spki,
    key: describeSpki(spki),
    validityDays: o.days,
    extKeyUsage: [],
    ca: o.pathLen === undefined ? {} : { pathLen: o.pathLen },
  });
  await storeCa(dir, issued.der, key, parent.chain);
  return assembleCa(name, issued.der, key, parent.chain);
}

export interface ServerTls {
  /** PEM: server certificate, then the issuing chain up to the root. */
  certChainPem: string;
  keyPem: string;
  certDer: Buffer;
}

export const defaultServerNames = (): GeneralName[] => {
  const names: GeneralName[] = [
    { type: 'dns', value: 'localhost' },
    { type: 'ip', value: '127.0.0.1' },
    { type: 'ip', value: '::1' },
  ];
  const h = hostname();
  if (h && h !== 'localhost' && /^[A-Za-z0-9.-]+$/.test(h)) names.push({ type: 'dns', value: h });
  return names;
};

/** What the TLS handshake presents: the server certificate, then its issuers up to the root. */
const presentedChain = (leaf: Buffer, issuer: CaMaterial) => [leaf, ...issuer.chain].map((d) => toPem('CERTIFICATE', d)).join('');

/**
 * Loads the TLS server certificate from `dir`, or issues one from `issuer`
 * (P-256, serverAuth) when there is none or it no longer chains to `issuer`.
 */
export async function ensureServerTls(dir: string, issuer: CaMaterial, o: { names?: GeneralName[]; days?: number } = {}): Promise<ServerTls> {
  const certFile = join(dir, 'server.cert.pem');
  const keyFile = join(dir, 'server.key.pem');
  if ((await exists(certFile)) && (await exists(keyFile))) {
    const pem = await readFile(certFile, 'utf8');
    const keyPem = await readFile(keyFile, 'utf8');
    const [leaf] = fromPemAll(pem, 'CERTIFICATE');
    if (leaf) {
      const x = new X509Certificate(leaf);
      const valid = new Date(x.validTo).getTime() > Date.now() + 86_400_000;
      const keyMatches = parseCertificate(leaf).spki.equals(spkiDer(loadPrivateKey(keyPem)));
      if (valid && keyMatches && issuedBy(x, issuer.cert)) {
        return { certChainPem: presentedChain(leaf, issuer), keyPem, certDer: leaf };
      }
    }
  }
  const names = o.names ?? defaultServerNames();
  const key = await generateKey('p256');
  const spki = spkiDer(key);
  const cn = names.find((n) => n.type === 'dns')?.value ?? 'est-gateway';
  const issued = new Signer(issuer).issue({
    subjectDer: buildName([['CN', cn]]),
    spki,
    key: describeSpki(spki),
    subjectAltNameDer: buildGeneralNames(names),
    validityDays: o.days ?? 3650,
    extKeyUsage: [OID.serverAuth],
  });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const keyPem = privateKeyPem(key);
  await writeFileAtomic(keyFile, keyPem, 0o600);
  await writeFileAtomic(certFile, toPem('CERTIFICATE', issued.der));
  return { certChainPem: presentedChain(issued.der, issuer), keyPem, certDer: issued.der };
}


/** SHA-256 fingerprint as OpenSSL prints it (AB:CD:...), what people compare and pin. */
export const sha256Fingerprint = (der: Buffer): string =>
  createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');

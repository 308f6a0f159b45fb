// `estgw client run --aziot-config /etc/aziot/config.toml`: keep the certificates
// Azure IoT Edge would issue over EST, from its own configuration (edgelet/doc/est.md,
// the tutorial in shared/reference): the device identity certificate, the Edge CA,
// and the EST identity certificate that the bootstrap certificate is traded for.
// Only the EST-related tables are read; the rest of the file belongs to other services.
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../config/load.js';
import { NAME_ATTR_OID } from '../est/oids.js';
import { parseSpan } from '../util/durations.js';
import { DEFAULT_POLICY, type RenewalPolicy } from './schedule.js';
import type { CertSpec, ClientConfig, Credentials } from './spec.js';
import { DEFAULT_CRL_REFRESH_MS, readTomlFile } from './config.js';

export interface AziotOptions {
  /** Where the certificates and keys are written (aziot keeps them in its own stores, which we do not touch). */
  outDir: string;
  /** Default: OUT_DIR/status.json. */
  statusFile?: string;
  logLevel?: string;
  metricsListen?: string;
}

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v);

/** aziot's cert IDs, used as keys of [cert_issuance.est.urls]. */
const DEVICE_ID_CERT = 'device-id';
const EDGE_CA_CERT = 'aziot-edged-ca';

/** Order in which a `subject = { ... }` table is encoded: most general first, as OpenSSL's -subj. */
const SUBJECT_ORDER = ['DC', 'C', 'ST', 'L', 'O', 'OU', 'CN'];

class Problems {
  readonly list: string[] = [];
  constructor(readonly file: string) {}
  add(where: string, msg: string): void {
    this.list.push(`${this.file}: ${where}: ${msg}`);
  }
}

function str(t: Table, key: string, where: string, p: Problems): string | undefined {
  const v = t[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') {
    p.add(`${where}.${key}`, 'must be a string');
    return undefined;
  }
  return v;
}

/** file:// URI (or a plain path) to a path; PKCS#11 URIs are refused with the reason. */
function filePath(uri: string | undefined, where: string, p: Problems): string | undefined {
  if (uri === undefined) return undefined;
  if (/^pkcs11:/i.test(uri)) {
    p.add(where, `"${uri}" is a PKCS#11 URI; estgw keeps keys in files only: use a file:// URI`);
    return undefined;
  }
  if (/^file:/i.test(uri)) {
    try {
      return fileURLToPath(uri);
    } catch {
      p.add(where, `invalid file URI "${uri}"`);
      return undefined;
    }
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(uri)) {
    p.add(where, `unsupported URI "${uri}": only file:// is supported`);
    return undefined;
  }
  return uri;
}

function authOf(t: Table, where: string, p: Problems): Credentials & { identityCert?: string; identityKey?: string } {
  const a: Credentials & { identityCert?: string; identityKey?: string } = {};
  const username = str(t, 'username', where, p);
  const password = str(t, 'password', where, p);
  if (username !== undefined) a.username = username;
  if (password !== undefined) a.password = password;
  const idCert = filePath(str(t, 'identity_cert', where, p), `${where}.identity_cert`, p);
  const idKey = filePath(str(t, 'identity_pk', where, p), `${where}.identity_pk`, p);
  const bsCert = filePath(str(t, 'bootstrap_identity_cert', where, p), `${where}.bootstrap_identity_cert`, p);
  const bsKey = filePath(str(t, 'bootstrap_identity_pk', where, p), `${where}.bootstrap_identity_pk`, p);
  if ((idCert === undefined) !== (idKey === undefined)) p.add(where, 'identity_cert and identity_pk go together');
  if ((bsCert === undefined) !== (bsKey === undefined)) p.add(where, 'bootstrap_identity_cert and bootstrap_identity_pk go together');
  if (idCert && idKey) Object.assign(a, { identityCert: idCert, identityKey: idKey });
  if (bsCert && bsKey) Object.assign(a, { bootstrapCert: bsCert, bootstrapKey: bsKey });
  return a;
}

const hasAuth = (a: ReturnType<typeof authOf>) =>
  a.username !== undefined || a.password !== undefined || a.identityCert !== undefined || a.bootstrapCert !== undefined;

function policyOf(v: unknown, where: string, p: Problems): RenewalPolicy {
  if (v === undefined) return DEFAULT_POLICY;
  if (!isTable(v)) {
    p.add(where, 'must be a table');
    return DEFAULT_POLICY;
  }
  const policy = { ...DEFAULT_POLICY };
  for (const key of ['threshold', 'retry'] as const) {
    const s = str(v, key, where, p);
    if (s === undefined) continue;
    try {
      policy[key] = parseSpan(s, `${where}.${key}`);
    } catch (e) {
      p.add(`${where}.${key}`, (e as Error).message);
    }
  }
  if (v.rotate_key !== undefined) {
    if (typeof v.rotate_key === 'boolean') policy.rotateKey = v.rotate_key;
    else p.add(`${where}.rotate_key`, 'must be true or false');
  }
  return policy;
}

function subjectOf(t: Table, where: string, p: Problems, fallbackCn: string | undefined): Array<[string, string]> | undefined {
  const cn = str(t, 'common_name', where, p);
  const subject = t.subject;
  if (isTable(subject)) {
    const pairs: Array<[string, string]> = [];
    for (const [k, v] of Object.entries(subject)) {
      if (typeof v !== 'string') p.add(`${where}.subject.${k}`, 'must be a string');
      else if (!NAME_ATTR_OID[k.toUpperCase()]) p.add(`${where}.subject.${k}`, 'unknown name attribute');
      else pairs.push([k.toUpperCase(), v]);
    }
    const rank = (k: string) => SUBJECT_ORDER.indexOf(k) + 1 || SUBJECT_ORDER.length;
    return pairs.sort((a, b) => rank(a[0]) - rank(b[0]));
  }
  if (typeof subject === 'string') return [['CN', subject]];
  if (cn !== undefined) return [['CN', cn]];
  if (fallbackCn !== undefined) return [['CN', fallbackCn]];
  p.add(where, 'common_name or subject is required');
  return undefined;
}

/** Reads the EST parts of an aziot config.toml into certificates to keep. */
export async function loadAziotConfig(file: string, o: AziotOptions): Promise<ClientConfig> {
  const raw = await readTomlFile(file);
  if (!isTable(raw)) throw new ConfigError([`${file}: not a TOML table`]);
  const p = new Problems(file);
  const est = isTable((raw.cert_issuance as Table | undefined)?.est) ? ((raw.cert_issuance as Table).est as Table) : {};
  const urls = isTable(est.urls) ? est.urls : {};
  const trustFiles: string[] = [];
  if (est.trusted_certs !== undefined) {
    if (!Array.isArray(est.trusted_certs)) p.add('cert_issuance.est.trusted_certs', 'must be an array of file:// URIs');
    else est.trusted_certs.forEach((u, i) => {
      const path = typeof u === 'string' ? filePath(u, `cert_issuance.est.trusted_certs[${i}]`, p) : undefined;
      if (typeof u !== 'string') p.add(`cert_issuance.est.trusted_certs[${i}]`, 'must be a string');
      if (path) trustFiles.push(path);
    });
  }
  const globalAuth = isTable(est.auth) ? authOf(est.auth, 'cert_issuance.est.auth', p) : {};
  const identityPolicy = policyOf(est.identity_auto_renew, 'cert_issuance.est.identity_auto_renew', p);

  const prov = isTable(raw.provisioning) ? raw.provisioning : {};
  const provAuth = isTable(prov.attestation) ? { t: prov.attestation, where: 'provisioning.attestation' } : isTable(prov.authentication) ? { t: prov.authentication, where: 'provisioning.authentication' } : undefined;
  const deviceId = (typeof prov.device_id === 'string' ? prov.device_id : undefined) ?? (isTable(prov.attestation) && typeof prov.attestation.registration_id === 'string' ? prov.attestation.registration_id : undefined);

  const urlFor = (section: Table, where: string, certId: string): string | undefined => {
    const u = str(section, 'url', where, p) ?? (typeof urls[certId] === 'string' ? urls[certId] : undefined) ?? (typeof urls.default === 'string' ? urls.default : undefined);
    if (u === undefined) p.add(where, `no EST URL: set ${where}.url or [cert_issuance.est.urls] default`);
    return u;
  };
  const out = (name: string) => ({ certFile: join(o.outDir, `${name}.cert.pem`), keyFile: join(o.outDir, `${name}.key.pem`) });
  const certs: CertSpec[] = [];
  const identities: CertSpec[] = [];
  const estIdentities = new Map<string, string>(); // bootstrap cert path -> name of the EST identity job it is traded for

  const addCert = (name: string, certId: string, section: Table, where: string, ca: boolean, fallbackCn: string | undefined) => {
    const url = urlFor(section, where, certId);
    const subject = subjectOf(section, where, p, fallbackCn);
    const own = authOf(section, where, p);
    const auth = hasAuth(own) ? own : globalAuth;
    if (!url || !subject) return;
    const creds: Credentials = {
      ...(auth.username !== undefined ? { username: auth.username } : {}),
      ...(auth.password !== undefined ? { password: auth.password } : {}),
    };
    if (auth.bootstrapCert && auth.bootstrapKey) {
      // aziot trades the bootstrap certificate for an EST identity certificate and presents that from then on.
      let idName = estIdentities.get(`${auth.bootstrapCert}|${url}`);
      if (!idName) {
        idName = estIdentities.size === 0 ? 'est-id' : `est-id-${estIdentities.size + 1}`;
        estIdentities.set(`${auth.bootstrapCert}|${url}`, idName);
        // the configured identity_cert/identity_pk paths hold the first EST identity; one per further server goes to OUT_DIR
        const files = auth.identityCert && auth.identityKey && estIdentities.size === 1 ? { certFile: auth.identityCert, keyFile: auth.identityKey } : out(idName);
        identities.push({
          name: idName, url, trustFiles, subject: [['CN', deviceId ?? subject.find(([k]) => k === 'CN')?.[1] ?? hostname()]], subjectAltNames: [],
          ca: false, keyType: 'p256', ...files, policy: identityPolicy, method: 'simpleenroll',
          auth: { ...creds, bootstrapCert: auth.bootstrapCert, bootstrapKey: auth.bootstrapKey }, pop: 'auto', timeoutMs: 30_000,
        });
      }
      Object.assign(creds, { identity: idName, bootstrapCert: auth.bootstrapCert, bootstrapKey: auth.bootstrapKey });
    } else if (auth.identityCert && auth.identityKey) {
      // an EST identity that is already on the device and not ours to renew: present it, like a bootstrap credential
      Object.assign(creds, { bootstrapCert: auth.identityCert, bootstrapKey: auth.identityKey });
    }
    certs.push({
      name, url, trustFiles, subject, subjectAltNames: [], ca, keyType: 'p256', ...out(name),
      policy: policyOf(section.auto_renew, `${where}.auto_renew`, p), method: 'simplereenroll', auth: creds, pop: 'auto', timeoutMs: 30_000,
    });
  };

  const idCert = provAuth && provAuth.t.identity_cert;
  if (provAuth && isTable(idCert)) {
    const where = `${provAuth.where}.identity_cert`;
    if (idCert.method === 'est') addCert('device-id', DEVICE_ID_CERT, idCert, where, false, deviceId);
    else if (idCert.method !== undefined) p.add(`${where}.method`, `"${String(idCert.method)}" is not issued over EST; estgw only keeps method = "est" certificates`);
  }
  const edgeCa = raw.edge_ca;
  if (isTable(edgeCa) && edgeCa.method === 'est') addCert('edge-ca', EDGE_CA_CERT, edgeCa, 'edge_ca', true, `${deviceId ?? hostname()} Edge CA`);

  if (p.list.length) throw new ConfigError(p.list);
  if (certs.length === 0) throw new ConfigError([`${file}: no certificate is issued over EST (method = "est" in [provisioning.*.identity_cert] or [edge_ca])`]);
  return {
    certs: [...identities, ...certs],
    statusFile: o.statusFile ?? join(o.outDir, 'status.json'),
    logLevel: o.logLevel ?? 'info',
    ...(o.metricsListen ? { metricsListen: o.metricsListen } : {}),
    // IoT Edge's file has no revocation keys: our own file's defaults (checked hourly, revoked not replaced)
    crl: { refreshMs: DEFAULT_CRL_REFRESH_MS },
  };
}

// Brings every configured CA into existence (first start) or loads it.
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { fromPemAll } from '../est/base64.js';
import { type GeneralName, parseNameString } from '../est/name.js';
import {
  type CaMaterial, type ServerTls, CaLoadError, caExists, createRootCa, createSubordinateCa, ensureServerTls, loadCa, previousGenerations,
} from '../pki/ca.js';
import type { KeySpec } from '../pki/keys.js';
import type { Ledger } from '../ledger/ledger.js';

export const caDir = (cfg: Config, name: string): string => cfg.cas[name]?.dir ?? join(cfg.server.data_dir, 'ca', name);

export interface Pki {
  cas: Map<string, CaMaterial>;
  tls: ServerTls;
  /** CAs created by this call (first start). */
  created: string[];
}

/** Parents before children, so a subordinate's parent exists when it is created. */
function creationOrder(cfg: Config): string[] {
  const order: string[] = [];
  const visit = (name: string, path: string[]) => {
    if (order.includes(name)) return;
    if (path.includes(name)) throw new CaLoadError(`CA parent loop: ${[...path, name].join(' -> ')}`);
    const parent = cfg.cas[name]?.create === 'subordinate' ? cfg.cas[name]?.parent : undefined;
    if (parent) visit(parent, [...path, name]);
    order.push(name);
  };
  for (const name of Object.keys(cfg.cas)) visit(name, []);
  return order;
}

/** The local CAs already on disk, creating nothing (what `estgw certs` signs CRLs with while the gateway runs). */
export async function loadLocalCas(cfg: Config): Promise<Map<string, CaMaterial>> {
  const cas = new Map<string, CaMaterial>();
  for (const name of Object.keys(cfg.cas)) {
    const dir = caDir(cfg, name);
    if (await caExists(dir)) cas.set(name, await loadCa(name, dir));
  }
  return cas;
}

export interface PrepareOptions {
  create: boolean;
  /** Obtains a `create = "request"` CA from the parent layer (src/issuer/subca-request.ts). */
  requestCa?: (name: string, dir: string) => Promise<CaMaterial>;
}

export async function preparePki(cfg: Config, opts: PrepareOptions): Promise<Pki> {
  const cas = new Map<string, CaMaterial>();
  const created: string[] = [];
  for (const name of creationOrder(cfg)) {
    const c = cfg.cas[name]!;
    const dir = caDir(cfg, name);
    if (await caExists(dir)) {
      const material = await loadCa(name, dir);
      if (c.create === 'request') material.previous = await previousGenerations(dir);
      cas.set(name, material);
      continue;
    }
    if (!opts.create || c.create === 'none') throw new CaLoadError(`CA "${name}": no ca.cert.pem in ${dir}`);
    if (c.create === 'request') {
      if (!opts.requestCa) throw new CaLoadError(`CA "${name}": not there yet; obtain it with \`estgw ca request-subca\` while the parent is reachable`);
      cas.set(name, await opts.requestCa(name, dir));
      created.push(name);
      continue;
    }
    const o = {
      subject: parseNameString(c.subject),
      keySpec: c.key as KeySpec,
      days: c.days,
      ...(c.path_len === undefined ? {} : { pathLen: c.path_len }),
    };
    cas.set(name, c.create === 'root' ? await createRootCa(name, dir, o) : await createSubordinateCa(name, dir, cas.get(c.parent!)!, o));
    created.push(name);
  }
  let tls: ServerTls;
  if (cfg.server.tls_cert && cfg.server.tls_key) {
    const certChainPem = await readFile(cfg.server.tls_cert, 'utf8');
    const keyPem = await readFile(cfg.server.tls_key, 'utf8');
    const leaf = fromPemAll(certChainPem, 'CERTIFICATE')[0];
    if (!leaf) throw new CaLoadError(`${cfg.server.tls_cert}: no certificate`);
    tls = { certChainPem, keyPem, certDer: leaf };
  } else {
    const names: GeneralName[] | undefined = cfg.server.tls_names?.map((n) => ({ type: isIP(n) ? 'ip' : 'dns', value: n }));
    tls = await ensureServerTls(join(cfg.server.data_dir, 'tls'), cas.get(cfg.server.tls_issuer)!, names ? { names } : {});
  }
  return { cas, tls, created };
}


/** The label under which setup-time certificates are on record. */
export const SETUP_LABEL = 'setup';

/**
 * Puts on record what the local CAs signed outside enrollment: this layer's
 * TLS server certificate (op "tls-server") and sub-CAs created under a local
 * CA (op "subordinate-ca"). Run at every start, before anything is served, so
 * a crash between writing such a certificate and recording it, or a data
 * directory from before the ledger, is made good. Returns what was checked.
 */
export async function recordSetupCertificates(ledger: Ledger, pki: Pki): Promise<Array<{ op: string; ca: string }>> {
  const out: Array<{ op: string; ca: string }> = [];
  const tlsCa = await ledger.recordSetup(pki.tls.certDer, { label: SETUP_LABEL, op: 'tls-server' });
  if (tlsCa) out.push({ op: 'tls-server', ca: tlsCa });
  for (const ca of pki.cas.values()) {
    const parent = await ledger.recordSetup(ca.certDer, { label: SETUP_LABEL, op: 'subordinate-ca' });
    if (parent) out.push({ op: 'subordinate-ca', ca: parent });
  }
  return out;
}

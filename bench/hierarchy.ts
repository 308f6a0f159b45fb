// `--hops N`: the enrolling client talks to the bottom of N forwarding layers
// (each an RA with its own certificate) above which the top layer issues. All
// real processes on loopback, each with its own data directory.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { hashPassword } from '../src/auth/password.js';
import { toPem } from '../src/est/base64.js';
import { buildName } from '../src/est/name.js';
import { OID } from '../src/est/oids.js';
import { describeSpki } from '../src/est/spki.js';
import { loadCa } from '../src/pki/ca.js';
import { Signer } from '../src/pki/issuance.js';
import { generateKey, privateKeyPem, spkiDer } from '../src/pki/keys.js';
import { GATEWAY_MAIN, type Gateway, REPO_ROOT, freePort, startGateway } from './gateway.js';

const run = promisify(execFile);

interface Layer {
  name: string;
  dir: string;
  file: string;
  port: number;
  /** The root of this layer's TLS certificate: what the layer below trusts. */
  tlsRoot: string;
}

const grantAll = `[[labels.default.grants]]
identity = "*"
common_names = ["*"]
subject_attributes = ["*"]
`;

export interface Hierarchy {
  /** The bottom layer: where the bench's client enrolls. */
  bottom: Gateway;
  /** Every layer, top first. */
  all: Gateway[];
  stop(): Promise<void>;
}

export async function startHierarchy(hops: number, workers: 'auto' | number, onSpawn: (stop: () => Promise<void>) => void): Promise<Hierarchy> {
  const base = await mkdtemp(join(tmpdir(), 'estgw-bench-hops-'));
  const hash = await hashPassword('estpwd');
  const users = `[users.estuser]\npassword_hash = "${hash}"\n`;
  const layers: Layer[] = [];
  for (let i = 0; i <= hops; i++) {
    const name = i === 0 ? 'top' : `hop${i}`;
    const dir = join(base, name);
    await mkdir(dir, { recursive: true });
    const port = await freePort();
    const file = join(base, `${name}.toml`);
    const tlsCa = i === 0 ? 'root' : 'tls';
    let toml = `[server]\nlisten = "127.0.0.1:${port}"\ndata_dir = "${dir}"\ntls_issuer = "${tlsCa}"\n[log]\nlevel = "warn"\n${users}`;
    if (i === 0) {
      toml += `[cas.root]\ncreate = "root"\nsubject = "/CN=bench top CA"\n[labels.default]\nca = "root"\nauth = ["basic", "cert"]\n${grantAll}`;
    } else {
      const parent = layers[i - 1]!;
      toml +=
        `[cas.tls]\ncreate = "root"\nsubject = "/CN=bench ${name} TLS"\n[labels.default]\nmode = "forward"\nauth = ["basic", "cert"]\n` +
        `[labels.default.upstream]\nurl = "https://127.0.0.1:${parent.port}/.well-known/est"\ntrust = "${parent.tlsRoot}"\n` +
        `cert = "${join(dir, 'ra.cert.pem')}"\nkey = "${join(dir, 'ra.key.pem')}"\ntimeout = 30\n${grantAll}`;
    }
    await writeFile(file, toml);
    await run(process.execPath, [GATEWAY_MAIN, 'ca', 'init', '--config', file], { cwd: REPO_ROOT });
    layers.push({ name, dir, file, port, tlsRoot: join(dir, 'ca', tlsCa, 'ca.cert.pem') });
  }
  // every forwarding layer's RA certificate, from the top's CA (in the field: estgw enroll on an RA label)
  const top = await loadCa('root', join(layers[0]!.dir, 'ca', 'root'));
  for (const l of layers.slice(1)) {
    const key = await generateKey('p256');
    const cert = new Signer(top).issue({
      subjectDer: buildName([['CN', `bench-ra-${l.name}`]]),
      spki: spkiDer(key),
      key: describeSpki(spkiDer(key)),
      validityDays: 2,
      extKeyUsage: [OID.cmcRA, OID.clientAuth],
    });
    await writeFile(join(l.dir, 'ra.key.pem'), privateKeyPem(key), { mode: 0o600 });
    await writeFile(join(l.dir, 'ra.cert.pem'), toPem('CERTIFICATE', cert.der));
  }
  const started: Gateway[] = [];
  for (const l of layers) {
    started.push(
      await startGateway({ workers, config: { file: l.file, port: l.port, dataDir: l.dir, caFile: l.tlsRoot }, onSpawn }),
    );
  }
  return {
    bottom: started.at(-1)!,
    all: [...started],
    async stop() {
      for (const g of started.reverse()) await g.stop();
      await rm(base, { recursive: true, force: true });
    },
  };
}

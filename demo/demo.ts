// `npm run demo [-- --check] [-- --keep] [-- --lifetime 60s]`: the three-layer
// hierarchy of config/hierarchy/, started on loopback with the real `estgw`
// command in a scratch copy, an edge client at the bottom, a middle-layer
// outage, and a summary of who issued what. --check runs it quietly and exits
// non-zero when any step fails (the test suite does this).
import { X509Certificate, randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { buildChain } from '../src/client/chain.js';
import { fromPemAll } from '../src/est/base64.js';
import { parseCertificate } from '../src/est/certificate.js';
import { NETSCAPE_COMMENT } from '../src/issuer/local-issuer.js';
import { sha256Fingerprint } from '../src/pki/ca.js';
import { parseDurationMs } from '../src/util/durations.js';
import { Child, DemoError, type LogLine, runCli } from './processes.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const PORTS = { top: 9443, middle: 9444, bottom: 9445 } as const;
/** A second middle replica, started cold while the top is down, to show the chain shared through Redis. */
const REPLICA_PORT = 9446;
const REDIS_URL = 'redis://127.0.0.1:6379';
const START_TIMEOUT_MS = 30_000;

type Layer = keyof typeof PORTS;
const url = (l: Layer) => `https://127.0.0.1:${PORTS[l]}/.well-known/est`;

/** Progress for people, or (with --check) kept back and shown only if a step fails. */
class Report {
  private readonly held: string[] = [];
  private n = 0;
  constructor(private readonly quiet: boolean) {}
  private out(line: string): void {
    if (this.quiet) this.held.push(line);
    else process.stdout.write(`${line}\n`);
  }
  step(title: string): void {
    this.out(`\n[${++this.n}] ${title}`);
  }
  info(text: string): void {
    this.out(`    ${text}`);
  }
  ok(text: string): void {
    this.out(`    ✓ ${text}`);
  }
  line(text = ''): void {
    this.out(text);
  }
  get steps(): number {
    return this.n;
  }
  heldLines(): string[] {
    return this.held;
  }
}

interface Issued {
  what: string;
  subject: string;
  serial: string;
  issuer: string;
  path: string;
  islanded: boolean;
  /** Per layer, who the request authenticated as there. */
  identities: string;
}

/** The edge client's names for the credential a request went out with. */
const CREDENTIAL: Record<string, string> = { none: 'Basic', identity: 'device cert', current: 'own cert', bootstrap: 'bootstrap cert' };

const cn = (x: X509Certificate, which: 'subject' | 'issuer') => /(?:^|\n)CN=([^\n]*)/.exec(x[which])?.[1] ?? x[which];
/** X509Certificate prints serials in upper case with leading zeros; the audit log in lower case without. */
const normSerial = (s: string) => s.toLowerCase().replace(/^0+(?=.)/, '');
const short = (fp: string) => `${fp.slice(0, 23)}…`;

class Demo {
  private readonly report: Report;
  private readonly ws: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly layers = new Map<Layer | 'client' | 'replica', Child>();
  private readonly retired: Child[] = [];
  private readonly issued: Issued[] = [];
  private redis: Redis | undefined;
  private readonly redisPrefix = `estgw:demo:${randomBytes(4).toString('hex')}:`;
  private rootFp = '';

  constructor(
    private readonly o: { check: boolean; keep: boolean; lifetime: string },
    ws: string,
  ) {
    this.report = new Report(o.check);
    this.ws = ws;
    const env = { ...process.env };
    // the shipped files say where everything goes; stray overrides would not
    for (const k of ['ESTGW_LISTEN', 'ESTGW_DATA_DIR', 'REDIS_URL']) delete env[k];
    this.env = env;
  }

  private conf = (f: string) => join('config', 'hierarchy', f);
  private data = (f: string) => join('data', 'hierarchy', f);
  private abs = (p: string) => join(this.ws, p);
  private cli = (args: string[], env: NodeJS.ProcessEnv = this.env) => runCli(CLI, args, { cwd: this.ws, env });

  async run(): Promise<void> {
    const r = this.report;
    const t0 = Date.now();
    await this.preflight();

    r.step('Top layer (enterprise, L4): creates the plant root and its issuing CA');
    this.rootFp = await this.startLayer('top', ['--set', `labels.default.cert_lifetime="${this.o.lifetime}"`]);
    r.ok(`listening on ${url('top')}; device certificates live ${this.o.lifetime} (demo setting)`);
    r.info(`root CA SHA-256 ${this.rootFp}`);

    r.step('Middle layer fetches the top\'s root, accepted only if it matches the pinned fingerprint');
    await this.cli(['cacerts', '--url', url('top'), '--pin', this.rootFp, '--trust', this.data('top-root.pem'), '--out', this.data('middle/top-cacerts.pem')]);
    const topRoot = fromPemAll(await readFile(this.abs(this.data('top-root.pem')), 'utf8'), 'CERTIFICATE');
    if (topRoot.length !== 1 || sha256Fingerprint(topRoot[0]!) !== this.rootFp) throw new DemoError('the pinned root was not stored');
    r.ok(`stored ${this.data('top-root.pem')}`);

    r.step('Middle layer obtains its RA certificate from the top (HTTP Basic middle-ra, once)');
    await this.raCertificate('middle', 'top', this.data('top-root.pem'));

    r.step(`Middle layer (operations, L3): forwards to the top as an RA${this.redis ? '; CA chains cached in Redis' : ''}`);
    await this.startMiddle();

    r.step('Bottom layer obtains its RA certificate through the middle (two hops)');
    await this.raCertificate('bottom', 'middle', this.data('middle-tls.pem'));

    r.step('Bottom layer obtains its own sub-CA through middle and top, for islanded issuance');
    const sub = await this.cli(['ca', 'request-subca', '--config', this.conf('bottom.toml')]);
    r.ok(sub.trim().replace(/^obtained /, '').replace(this.ws, '.'));

    r.step('Bottom layer (supervisory, L2): forwards to the middle, issues itself when the middle is unreachable');
    await this.startLayer('bottom');
    r.ok(`listening on ${url('bottom')}, with a TLS certificate from its own sub-CA`);

    r.step('The device bootstraps trust from the bottom: /cacerts, accepted only if its root has the plant root\'s fingerprint');
    const chainBefore = await this.cacerts('cacerts-before.pem', ['--pin', this.rootFp]);
    r.ok(`stored ${this.data('device/plant-root.pem')}: the only anchor the device needs`);
    r.info(`/cacerts at the bottom: ${chainBefore.map((d) => cn(new X509Certificate(d), 'subject')).join(' → ')}`);

    r.step('Edge client daemon enrolls the device through bottom → middle → top');
    const client = Child.start('client', CLI, ['client', 'run', '--config', this.conf('edge-client.toml')], { cwd: this.ws, env: this.env });
    this.layers.set('client', client);
    for (const name of ['device', 'opcua-server']) {
      const line = await client.waitFor(`the first ${name} certificate`, START_TIMEOUT_MS, () => client.logs.find((l) => l.msg === 'certificate renewed' && l.cert === name));
      await this.record(`${name} (enroll, ${CREDENTIAL[String(line.credential)] ?? String(line.credential)})`, await this.clientCert(name));
    }
    const first = this.issued.find((i) => i.what.startsWith('device'))!;
    r.info(`who authenticated where: ${first.identities}`);
    if (!/top cert:ra\/middle-ra/.test(first.identities) || !/middle cert:ra\/bottom-ra/.test(first.identities)) {
      throw new DemoError(`each layer should authenticate upward with its own RA certificate, saw: ${first.identities}`);
    }
    const enrolled = client.logs.find((l) => l.msg === 'certificate renewed' && l.cert === 'device')!;
    r.info(`next renewal of the device certificate at ${String(enrolled.next)}`);

    r.step(`Waiting for the automatic renewal (lifetime ${this.o.lifetime}, threshold 80%, new key)`);
    const lifetimeMs = parseDurationMs(this.o.lifetime);
    const renewed = await this.waitWithProgress(client, 'the device renewal', lifetimeMs + 30_000, Date.parse(String(enrolled.next)), () =>
      client.logs.find((l) => l.msg === 'certificate renewed' && l.cert === 'device' && l.op === 'simplereenroll'),
    );
    if (renewed.newKey !== true) throw new DemoError('the renewal kept the old key although rotate_key = true');
    await this.record('device (renewal, new key)', await this.clientCert('device'));

    r.step('Middle layer stops (maintenance, a cut cable)');
    await this.layers.get('middle')!.stop();
    r.ok('middle stopped');
    const chainDuring = await this.cacerts('cacerts-islanded.pem');
    if (!sameSet(chainBefore, chainDuring)) throw new DemoError('/cacerts at the bottom changed while the middle was down');
    r.ok(`bottom still serves /cacerts from its cache: the same ${chainDuring.length} certificates`);

    r.step('A new device enrolls while the middle is down: the bottom issues from its own sub-CA');
    await this.oneShotEnroll('device-2');
    const islanded = this.issued.at(-1)!;
    if (!islanded.islanded || !islanded.issuer.includes('bottom')) throw new DemoError(`device-2 was not issued islanded by the bottom layer (issuer ${islanded.issuer})`);
    r.ok('marked islanded in the certificate (Netscape comment) and in the bottom\'s audit line');

    r.step('Middle layer restarts: forwarding resumes without touching the bottom');
    await this.startMiddle();
    await this.oneShotEnroll('device-3');
    const back = this.issued.at(-1)!;
    if (back.islanded || !back.path.includes('top')) throw new DemoError(`device-3 did not go through the top (${back.path})`);

    if (this.redis) await this.replicaFromRedis();

    await this.summary(chainDuring, Date.now() - t0);
  }

  /** The top goes down; a middle replica that never talked to it still serves its chain, from Redis. */
  private async replicaFromRedis(): Promise<void> {
    const r = this.report;
    r.step('The top layer stops; a second middle replica starts cold and serves the CA chain its peer cached in Redis');
    await this.layers.get('top')!.stop();
    r.ok('top stopped');
    const replica = Child.start('middle replica', CLI, ['serve', '--config', this.conf('middle.toml'), '--listen', `127.0.0.1:${REPLICA_PORT}`, '--set', `redis.key_prefix="${this.redisPrefix}"`], {
      cwd: this.ws,
      env: { ...this.env, REDIS_URL },
    });
    this.layers.set('replica', replica);
    await replica.waitForBanner(/root CA SHA-256 fingerprint: (\S+)/, START_TIMEOUT_MS);
    const out = this.data('middle/replica-cacerts.pem');
    await this.cli(['cacerts', '--url', `https://127.0.0.1:${REPLICA_PORT}/.well-known/est`, '--trust', this.data('middle-tls.pem'), '--out', out]);
    const served = fromPemAll(await readFile(this.abs(out), 'utf8'), 'CERTIFICATE');
    const fromTop = fromPemAll(await readFile(this.abs(this.data('middle/top-cacerts.pem')), 'utf8'), 'CERTIFICATE');
    if (!sameSet(served, fromTop)) throw new DemoError('the new middle replica did not serve the top\'s CA chain');
    r.ok(`replica on :${REPLICA_PORT} answered /cacerts with the top's ${served.length} certificates, the top being down: from Redis`);
  }

  private async preflight(): Promise<void> {
    for (const [layer, port] of [...Object.entries(PORTS), ['middle replica', REPLICA_PORT] as const]) {
      await new Promise<void>((resolve, reject) => {
        const s = createServer();
        s.once('error', () => reject(new DemoError(`port ${port} (the ${layer} layer) is in use on 127.0.0.1: stop what listens there, another demo perhaps`)));
        s.listen(port, '127.0.0.1', () => s.close(() => resolve()));
      });
    }
    const redis = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
    redis.on('error', () => {});
    try {
      await redis.connect();
      await redis.ping();
      this.redis = redis;
    } catch {
      redis.disconnect();
      this.report.info(`Redis does not answer at ${REDIS_URL}: the middle layer caches CA chains in-process instead`);
    }
    await cp(join(REPO, 'config', 'hierarchy'), this.abs(join('config', 'hierarchy')), { recursive: true });
    for (const d of ['middle', 'bottom', 'device']) await mkdir(this.abs(this.data(d)), { recursive: true });
  }

  /** Starts `estgw serve` for a layer; resolves with the root fingerprint its banner prints. */
  private async startLayer(layer: Layer, extra: string[] = [], env: NodeJS.ProcessEnv = this.env): Promise<string> {
    const old = this.layers.get(layer);
    if (old) this.retired.push(old);
    const child = Child.start(layer, CLI, ['serve', '--config', this.conf(`${layer}.toml`), ...extra], { cwd: this.ws, env });
    this.layers.set(layer, child);
    return child.waitForBanner(/root CA SHA-256 fingerprint: (\S+)/, START_TIMEOUT_MS);
  }

  private async startMiddle(): Promise<void> {
    const env = this.redis ? { ...this.env, REDIS_URL } : this.env;
    await this.startLayer('middle', ['--set', `redis.key_prefix="${this.redisPrefix}"`], env);
    await cp(this.abs(this.data('middle/ca/tls/ca.cert.pem')), this.abs(this.data('middle-tls.pem')));
    this.report.ok(`listening on ${url('middle')}`);
  }

  private async raCertificate(layer: 'middle' | 'bottom', parent: Layer, trust: string): Promise<void> {
    await this.cli([
      'enroll', '--url', url(parent), '--label', 'ra', '--trust', trust,
      '--user', `${layer}-ra`, '--pass-file', this.conf(`secrets/${layer}-ra.txt`), '--cn', `${layer}-ra`,
      '--out', this.data(`${layer}/ra.cert.pem`), '--out-key', this.data(`${layer}/ra.key.pem`),
    ]);
    const x = new X509Certificate(fromPemAll(await readFile(this.abs(this.data(`${layer}/ra.cert.pem`)), 'utf8'), 'CERTIFICATE')[0]!);
    if (!x.keyUsage?.includes('1.3.6.1.5.5.7.3.28')) throw new DemoError(`${layer}'s RA certificate lacks the id-kp-cmcRA EKU`);
    this.report.ok(`CN=${cn(x, 'subject')}, EKU cmcRA, issued by ${cn(x, 'issuer')}, valid until ${new Date(x.validTo).toISOString()}`);
  }

  private async cacerts(out: string, extra: string[] = []): Promise<Buffer[]> {
    await this.cli(['cacerts', '--url', url('bottom'), '--trust', this.data('device/plant-root.pem'), ...extra, '--out', this.data(`device/${out}`)]);
    return fromPemAll(await readFile(this.abs(this.data(`device/${out}`)), 'utf8'), 'CERTIFICATE');
  }

  private async clientCert(name: string): Promise<Buffer[]> {
    return fromPemAll(await readFile(this.abs(this.data(`device/${name === 'device' ? 'device' : 'opcua'}.cert.pem`)), 'utf8'), 'CERTIFICATE');
  }

  private async oneShotEnroll(name: string): Promise<void> {
    const out = this.data(`device/${name}.cert.pem`);
    await this.cli(['enroll', '--url', url('bottom'), '--trust', this.data('device/plant-root.pem'), '--user', 'estuser', '--pass-file', this.conf('secrets/estuser.txt'), '--cn', name, '--out', out]);
    await this.record(`${name} (estgw enroll, Basic)`, fromPemAll(await readFile(this.abs(out), 'utf8'), 'CERTIFICATE'));
  }

  /**
   * Which layers saw this certificate (their audit lines carry its serial),
   * whether it chains to the pinned root through the bottom's /cacerts, and
   * whether it carries the islanded mark.
   */
  private async record(what: string, chain: Buffer[]): Promise<void> {
    const leaf = new X509Certificate(chain[0]!);
    const serial = normSerial(leaf.serialNumber);
    const pool = [...chain.slice(1), ...fromPemAll(await readFile(this.abs(this.data('device/cacerts-before.pem')), 'utf8'), 'CERTIFICATE')];
    const anchors = fromPemAll(await readFile(this.abs(this.data('top-root.pem')), 'utf8'), 'CERTIFICATE');
    const path = buildChain(chain[0]!, pool, anchors, Date.now());
    if (!path) throw new DemoError(`${what}: CN=${cn(leaf, 'subject')} does not chain to the pinned root`);
    const seen = (['bottom', 'middle', 'top'] as const).filter((l) => this.auditOf(l, serial));
    const identities = seen.map((l) => `${l} ${String(this.auditOf(l, serial)!.identity)}`).join(' · ');
    const mark = parseCertificate(chain[0]!).extensions.some((e) => e.oid === NETSCAPE_COMMENT);
    const audited = this.auditOf('bottom', serial);
    const islanded = mark && audited?.islanded === true;
    const item: Issued = { what, subject: cn(leaf, 'subject'), serial, issuer: cn(leaf, 'issuer'), path: seen.join(' → ') || '(no audit line)', islanded, identities };
    this.issued.push(item);
    this.report.ok(`${what}: CN=${item.subject}, serial ${serial.slice(0, 12)}…, issued by ${item.issuer} via ${item.path}${islanded ? ' (islanded)' : ''}; verifies to the root`);
  }

  private auditOf(layer: Layer, serial: string): LogLine | undefined {
    const children = [...this.retired.filter((c) => c.name === layer), this.layers.get(layer)].filter((c): c is Child => c !== undefined);
    for (const c of children) {
      const hit = c.logs.find((l) => l.msg === 'est' && typeof l.serial === 'string' && normSerial(l.serial) === serial);
      if (hit) return hit;
    }
    return undefined;
  }

  private async waitWithProgress(c: Child, what: string, timeoutMs: number, dueAt: number, probe: () => LogLine | undefined): Promise<LogLine> {
    const tick = setInterval(() => {
      const left = Math.round((dueAt - Date.now()) / 1000);
      this.report.info(left > 0 ? `… ${left} s until the renewal is due` : '… due now');
    }, 10_000);
    try {
      return await c.waitFor(what, timeoutMs, probe);
    } finally {
      clearInterval(tick);
    }
  }

  private async summary(chain: Buffer[], ms: number): Promise<void> {
    const r = this.report;
    r.step('Summary');
    r.line(`    root CA          ${this.rootFp}`);
    r.line('    CA chain served by the bottom layer (/cacerts):');
    for (const d of chain) {
      const x = new X509Certificate(d);
      r.line(`      ${cn(x, 'subject').padEnd(22)} SHA-256 ${short(sha256Fingerprint(d))}  until ${x.validTo}`);
    }
    r.line('    certificates:');
    const w = Math.max(...this.issued.map((i) => i.what.length));
    for (const i of this.issued) {
      r.line(`      ${i.what.padEnd(w)}  CN=${i.subject.padEnd(12)} by ${i.issuer.padEnd(17)} via ${i.path}${i.islanded ? '  [islanded]' : ''}`);
    }
    const client = this.layers.get('client')!;
    const renewals = client.logs.filter((l) => l.msg === 'certificate renewed' && l.op === 'simplereenroll');
    r.line(`    renewals by the edge client: ${renewals.length} (${renewals.map((l) => `${String(l.cert)} ${l.newKey ? 'new key' : 'same key'}`).join(', ')})`);
    if (this.redis) {
      const keys = await this.redis.keys(`${this.redisPrefix}*`);
      r.line(`    Redis: ${keys.length} cached chain(s) under ${this.redisPrefix}, shared by both middle replicas`);
    }
    r.line(`    every certificate verified to the pinned root; ${r.steps} steps in ${(ms / 1000).toFixed(1)} s`);
  }

  diagnostics(): string[] {
    const out: string[] = [];
    for (const c of [...this.retired, ...this.layers.values()]) {
      out.push(`--- ${c.name} (last lines)`, ...c.tail().map((l) => `    ${l}`));
    }
    return out;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.layers.values()].map((c) => c.stop()));
    if (this.redis) {
      const keys = await this.redis.keys(`${this.redisPrefix}*`).catch(() => [] as string[]);
      if (keys.length) await this.redis.del(...keys).catch(() => 0);
      this.redis.disconnect();
    }
    if (!this.o.keep) await rm(this.ws, { recursive: true, force: true });
    else this.report.line(`\nfiles kept in ${this.ws}`);
  }

  heldOutput(): string[] {
    return this.report.heldLines();
  }
}

const sameSet = (a: Buffer[], b: Buffer[]) => a.length === b.length && a.every((x) => b.some((y) => y.equals(x)));

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { check: { type: 'boolean', default: false }, keep: { type: 'boolean', default: false }, lifetime: { type: 'string', default: '60s' } },
    strict: true,
  });
  const lifetimeMs = parseDurationMs(values.lifetime, '--lifetime');
  if (lifetimeMs < 60_000 || lifetimeMs > 600_000) throw new DemoError('--lifetime must be between 60s and 10m');
  const ws = await mkdtemp(join(tmpdir(), 'estgw-demo-'));
  const demo = new Demo({ check: values.check, keep: values.keep, lifetime: values.lifetime }, ws);
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    void demo.stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  if (!values.check) process.stdout.write(`est-gateway demo: three layers on 127.0.0.1:${PORTS.top}-${REPLICA_PORT}, working copy in ${ws}\n`);
  try {
    await demo.run();
    if (values.check) process.stdout.write('demo: every step passed\n');
    return 0;
  } catch (e) {
    if (interrupted) return 130;
    const lines = values.check ? [...demo.heldOutput(), '', ...demo.diagnostics()] : ['', ...demo.diagnostics()];
    process.stderr.write(`${lines.join('\n')}\ndemo failed: ${(e as Error).message}\n`);
    return 1;
  } finally {
    if (!interrupted) await demo.stopAll();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`demo: ${(e as Error).message}\n`);
    process.exitCode = 2;
  },
);

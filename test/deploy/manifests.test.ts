// Static checks of deploy/: no docker, kubectl or network. YAML is read with
// the `yaml` package, gateway configs with the gateway's own loader.
import test from 'ava';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfigFile } from '../../src/config/load.js';

// dist/test/deploy -> repository root
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const DEPLOY = join(ROOT, 'deploy');
const K8S = join(DEPLOY, 'k8s');
const DOCKER = join(DEPLOY, 'docker');

type Obj = Record<string, any>;
const yamlFile = (p: string): Obj => parse(readFileSync(p, 'utf8'), { merge: true }) as Obj;
const docsOf = (p: string): Obj[] =>
  parseAllDocuments(readFileSync(p, 'utf8'), { merge: true })
    .map((d) => d.toJS() as Obj | null)
    .filter((d): d is Obj => d !== null && d !== undefined);

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}
const portOf = (listen: string) => Number(listen.slice(listen.lastIndexOf(':') + 1));

test('every YAML file under deploy/ parses without errors or warnings', (t) => {
  const files = walk(DEPLOY).filter((f) => /\.ya?ml$/.test(f));
  t.true(files.length >= 15, `only ${files.length} YAML files`);
  for (const f of files) {
    for (const doc of parseAllDocuments(readFileSync(f, 'utf8'), { merge: true })) {
      t.deepEqual(doc.errors.map((e) => e.message), [], f);
      t.deepEqual(doc.warnings.map((e) => e.message), [], f);
    }
  }
});

// ---- Kustomize (a small interpreter of what these manifests use) ----

interface Generator { name: string; files: string[]; behavior?: string }
interface Built { resources: Obj[]; generators: Map<string, Generator & { kind: 'ConfigMap' | 'Secret' }>; patches: Obj[]; namespace?: string; replicas: Obj[] }

function build(dir: string): Built {
  const k = yamlFile(join(dir, 'kustomization.yaml'));
  const out: Built = { resources: [], generators: new Map(), patches: [], namespace: k.namespace, replicas: k.replicas ?? [] };
  // a Component is built like a directory resource: its resources and patches join the overlay's
  for (const r of [...((k.resources ?? []) as string[]), ...((k.components ?? []) as string[])]) {
    const p = resolve(dir, r);
    if (!existsSync(p)) throw new Error(`${dir}: resource ${r} does not exist`);
    if (statSync(p).isDirectory()) {
      const sub = build(p);
      out.resources.push(...sub.resources);
      for (const [n, g] of sub.generators) out.generators.set(n, g);
      out.patches.push(...sub.patches);
      out.replicas.push(...sub.replicas);
    } else out.resources.push(...docsOf(p));
  }
  for (const [kind, key] of [['ConfigMap', 'configMapGenerator'], ['Secret', 'secretGenerator']] as const) {
    for (const g of (k[key] ?? []) as Obj[]) {
      const files = ((g.files ?? []) as string[]).map((f) => resolve(dir, f.includes('=') ? f.slice(f.indexOf('=') + 1) : f));
      if (g.behavior === 'replace' || g.behavior === 'merge') {
        if (!out.generators.has(g.name)) throw new Error(`${dir}: ${key} ${g.name} has behavior ${g.behavior} but the base has no such generator`);
      }
      out.generators.set(g.name, { kind, name: g.name, files, behavior: g.behavior });
    }
  }
  for (const p of (k.patches ?? []) as Obj[]) {
    const doc = p.path ? yamlFile(resolve(dir, p.path)) : parse(p.patch);
    out.patches.push({ target: p.target ?? { kind: doc.kind, name: doc.metadata?.name }, doc });
  }
  return out;
}

const isMap = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNamed = (v: unknown) => isMap(v) && typeof v.name === 'string';

/**
 * Strategic merge as the API server applies it, for what these manifests use:
 * maps merge, null deletes a key, lists of named items (containers, volumes)
 * merge by name, other lists replace.
 */
function strategicMerge(base: unknown, patch: unknown): unknown {
  if (patch === null) return undefined;
  if (Array.isArray(patch)) {
    if (!Array.isArray(base) || !patch.every(isNamed) || !base.every(isNamed)) return structuredClone(patch);
    const out = structuredClone(base) as Obj[];
    for (const item of patch as Obj[]) {
      const i = out.findIndex((o) => o.name === item.name);
      if (i < 0) out.push(structuredClone(item));
      else out[i] = strategicMerge(out[i], item) as Obj;
    }
    return out;
  }
  if (isMap(patch)) {
    const out: Obj = isMap(base) ? { ...base } : {};
    for (const [k, v] of Object.entries(patch)) {
      const merged = strategicMerge(out[k], v);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    }
    return out;
  }
  return patch;
}

/** The effective object after the overlay's patches. */
function effective(b: Built, kind: string, name: string): Obj {
  const base = b.resources.find((r) => r.kind === kind && r.metadata?.name === name);
  if (!base) throw new Error(`no ${kind} ${name}`);
  let obj = structuredClone(base);
  for (const p of b.patches) {
    if (p.target.kind === kind && p.target.name === name) obj = strategicMerge(obj, p.doc) as Obj;
  }
  return obj;
}

const exists = (b: Built, kind: 'ConfigMap' | 'Secret', name: string) =>
  b.resources.some((r) => r.kind === kind && r.metadata?.name === name) || b.generators.get(name)?.kind === kind;

const LAYERS = [
  { dir: 'base', ns: undefined, parent: undefined },
  { dir: 'overlays/enterprise', ns: 'plant-l4', parent: undefined },
  { dir: 'overlays/operations', ns: 'plant-l3', parent: 'plant-l4' },
  { dir: 'overlays/supervisory', ns: 'plant-l2', parent: 'plant-l3' },
] as const;

for (const layer of LAYERS) {
  test(`k8s ${layer.dir}: references, probes, Service, gateway.toml, NetworkPolicy`, async (t) => {
    const b = build(join(K8S, layer.dir));
    t.is(b.namespace, layer.ns);
    if (layer.ns) t.true(b.resources.some((r) => r.kind === 'Namespace' && r.metadata.name === layer.ns));

    // generators name existing files
    for (const g of b.generators.values()) for (const f of g.files) t.true(existsSync(f), `${g.name}: ${f} missing`);

    const dep = effective(b, 'Deployment', 'estgw');
    const pod = dep.spec.template.spec as Obj;
    const containers = pod.containers as Obj[];
    t.true(containers.length >= 2, 'workload + est-gateway sidecar');
    const gw = containers.find((c) => c.name === 'est-gateway');
    t.truthy(gw);
    t.true(containers.some((c) => c.name !== 'est-gateway'), 'a workload container');

    // volumes → ConfigMap / Secret that exist; mounts → volumes that exist
    const volumes = pod.volumes as Obj[];
    t.true(volumes.some((v) => v.configMap?.name === 'estgw-config'));
    t.true(volumes.some((v) => v.secret?.secretName === 'estgw-keys'));
    for (const v of volumes) {
      if (v.configMap) t.true(exists(b, 'ConfigMap', v.configMap.name), `ConfigMap ${v.configMap.name}`);
      if (v.secret) t.true(exists(b, 'Secret', v.secret.secretName), `Secret ${v.secret.secretName}`);
    }
    for (const c of containers) {
      for (const e of (c.envFrom ?? []) as Obj[]) {
        if (e.configMapRef) t.true(exists(b, 'ConfigMap', e.configMapRef.name));
        if (e.secretRef) t.true(exists(b, 'Secret', e.secretRef.name));
      }
      for (const m of (c.volumeMounts ?? []) as Obj[]) t.true(volumes.some((v) => v.name === m.name), `mount ${m.name}`);
    }
    const mountOf = (vol: string) => (gw!.volumeMounts as Obj[]).find((m) => m.name === volumes.find((v) => v.configMap?.name === vol || v.secret?.secretName === vol)?.name);
    t.is(mountOf('estgw-config')?.mountPath, '/etc/estgw');
    t.is(mountOf('estgw-keys')?.mountPath, '/etc/estgw/secrets');

    // probes
    const ports = (gw!.ports ?? []) as Obj[];
    const est = ports.find((p) => p.name === 'est');
    t.truthy(est);
    t.is(gw!.readinessProbe?.httpGet?.path, '/readyz');
    t.is(gw!.livenessProbe?.httpGet?.path, '/healthz');
    for (const c of containers) {
      for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe].filter(Boolean) as Obj[]) {
        if (!probe.httpGet) continue;
        t.is(probe.httpGet.scheme, 'HTTPS');
        t.true(((c.ports ?? []) as Obj[]).some((p) => p.name === probe.httpGet.port), `probe port ${probe.httpGet.port}`);
        t.true(['/healthz', '/readyz'].includes(probe.httpGet.path));
      }
    }

    // Services target existing port names of the pods they select
    for (const svc of b.resources.filter((r) => r.kind === 'Service')) {
      const target = b.resources.find((r) => r.kind === 'Deployment' && Object.entries(svc.spec.selector).every(([k, v]) => r.spec.template.metadata.labels[k] === v));
      t.truthy(target, `Service ${svc.metadata.name} selects a Deployment`);
      const names = (target!.spec.template.spec.containers as Obj[]).flatMap((c) => ((c.ports ?? []) as Obj[]).map((p) => p.name));
      for (const p of svc.spec.ports as Obj[]) if (typeof p.targetPort === 'string') t.true(names.includes(p.targetPort), `${svc.metadata.name} → ${p.targetPort}`);
    }
    const estSvc = effective(b, 'Service', 'estgw');
    t.true((estSvc.spec.ports as Obj[]).some((p) => p.name === 'est' && p.port === 8085 && p.targetPort === 'est'));
    t.true(b.resources.some((r) => r.kind === 'Deployment' && r.metadata.name === 'estgw-redis'));
    t.true(b.resources.some((r) => r.kind === 'Service' && r.metadata.name === 'estgw-redis'));
    t.true((gw!.env as Obj[]).some((e) => e.name === 'REDIS_URL' && /^redis:\/\/estgw-redis:6379$/.test(e.value)));

    // the effective gateway.toml is valid and listens on the container port
    const cm = b.generators.get('estgw-config')!;
    const toml = cm.files.find((f) => f.endsWith('gateway.toml'))!;
    if (layer.dir !== 'base') t.is(cm.behavior, 'replace');
    t.true(toml.startsWith(join(K8S, layer.dir)), `${layer.dir} uses its own gateway.toml`);
    const cfg = await loadConfigFile(toml);
    t.is(portOf(cfg.server.listen), est!.containerPort);
    t.is(cfg.server.data_dir, '/var/lib/estgw');
    const upstreams = [...Object.values(cfg.labels).map((l) => l.upstream), ...Object.values(cfg.cas).map((c) => c.request)].filter((u) => u !== undefined);
    if (layer.parent) {
      t.true(upstreams.length > 0);
      for (const u of upstreams) {
        const url = new URL(u.url);
        t.is(url.hostname, `estgw.${layer.parent}.svc.cluster.local`);
        t.is(url.port, '8085');
        t.true(u.trust.startsWith('/etc/estgw/secrets/'));
      }
    } else t.is(upstreams.length, 0);

    // metrics: the configured port is a named container port, announced to Prometheus, and admitted only from monitoring
    if (cfg.server.metrics_listen) {
      const mport = ports.find((p) => p.name === 'metrics');
      t.is(mport?.containerPort, portOf(cfg.server.metrics_listen));
      t.is(String(dep.spec.template.metadata.annotations?.['prometheus.io/port']), String(mport?.containerPort));
      const rules = (effective(b, 'NetworkPolicy', 'estgw').spec.ingress as Obj[]).filter((r) => (r.ports as Obj[]).some((p) => p.port === mport?.containerPort));
      t.true(rules.length > 0 && rules.every((r) => (r.from as Obj[] | undefined)?.every((f) => f.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'monitoring')), 'metrics only from monitoring');
    }

    // NetworkPolicy egress: DNS, own Redis, and only the parent namespace on 8085
    const np = effective(b, 'NetworkPolicy', 'estgw');
    t.true((np.spec.policyTypes as string[]).includes('Egress'));
    const egress = np.spec.egress as Obj[];
    const namespaces = new Set<string>();
    for (const rule of egress) {
      t.true(Array.isArray(rule.to) && rule.to.length > 0, 'no egress rule allows every destination');
      t.true(Array.isArray(rule.ports) && rule.ports.length > 0, 'no egress rule allows every port');
      const rulePorts = (rule.ports as Obj[]).map((p) => p.port);
      for (const peer of rule.to as Obj[]) {
        t.falsy(peer.ipBlock, 'no ipBlock egress');
        const ns = peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] as string | undefined;
        if (peer.namespaceSelector) t.truthy(ns, 'namespaceSelector names one namespace');
        if (ns === 'kube-system') t.deepEqual([...new Set(rulePorts)], [53]);
        else if (ns) {
          namespaces.add(ns);
          t.deepEqual(rulePorts, [8085]);
        } else {
          t.is(peer.podSelector?.matchLabels?.['app.kubernetes.io/name'], 'estgw-redis', 'same-namespace egress only to Redis');
          t.deepEqual(rulePorts, [6379]);
        }
      }
    }
    t.deepEqual([...namespaces], layer.parent ? [layer.parent] : []);
    if (layer.dir === 'overlays/operations') t.true(b.replicas.some((r) => r.name === 'estgw' && r.count >= 2));

    // state: a layer that owns a CA keeps it on a PersistentVolumeClaim with a single writer;
    // a layer without one is stateless, and its replicas share one TLS identity from the Secret
    const stateVol = volumes.find((v) => v.name === (gw!.volumeMounts as Obj[]).find((m) => m.mountPath === cfg.server.data_dir)?.name);
    t.truthy(stateVol, 'data_dir is a mounted volume');
    t.is(Object.keys(stateVol!).filter((k) => k !== 'name').length, 1, 'one volume source');
    const ownsCa = Object.keys(cfg.cas).length > 0 && layer.dir !== 'base';
    if (ownsCa) {
      const claim = stateVol!.persistentVolumeClaim?.claimName as string | undefined;
      t.truthy(claim, `${layer.dir} keeps its CA on a PersistentVolumeClaim`);
      t.true(b.resources.some((r) => r.kind === 'PersistentVolumeClaim' && r.metadata.name === claim), `PVC ${claim} exists`);
      t.is(dep.spec.replicas, 1, 'one writer of the CA keys');
      t.is(dep.spec.strategy?.type, 'Recreate', 'the old pod stops before the new one mounts the volume');
      t.false(b.replicas.some((r) => r.name === 'estgw' && r.count > 1));
    } else if (layer.dir !== 'base') {
      t.deepEqual(stateVol!.emptyDir, {});
      t.truthy(cfg.server.tls_cert, 'a shared TLS certificate, not one generated per pod');
      const secret = b.resources.find((r) => r.kind === 'Secret' && r.metadata.name === 'estgw-keys')!;
      for (const f of [cfg.server.tls_cert!, cfg.server.tls_key!]) {
        t.true(f.startsWith('/etc/estgw/secrets/'), f);
        t.true(Object.hasOwn(secret.stringData ?? {}, f.slice('/etc/estgw/secrets/'.length)), `Secret estgw-keys has ${f}`);
      }
    }
  });
}

test('k8s operations: tls-ca.toml makes the shared TLS certificate for the name the supervisory layer dials', async (t) => {
  const { execFile } = await import('node:child_process');
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { X509Certificate } = await import('node:crypto');
  const dir = await mkdtemp(join(tmpdir(), 'estgw-opstls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const cli = join(ROOT, 'dist', 'src', 'cli', 'main.js');
  await new Promise<void>((done, fail) =>
    execFile(process.execPath, [cli, 'ca', 'init', '--config', join(K8S, 'overlays/operations/tls-ca.toml'), '--data-dir', dir], (e) => (e ? fail(e) : done())),
  );
  const cert = new X509Certificate(readFileSync(join(dir, 'tls', 'server.cert.pem')));
  const root = new X509Certificate(readFileSync(join(dir, 'ca', 'tls', 'ca.cert.pem')));
  t.true(cert.verify(root.publicKey) && cert.checkIssued(root));
  const supervisory = await loadConfigFile(join(K8S, 'overlays/supervisory/gateway.toml'));
  const dialled = new URL(supervisory.labels.default!.upstream!.url).hostname;
  t.truthy(cert.checkHost(dialled), `the certificate names ${dialled}`);
});

// ---- docker compose ----

test('compose: services, networks, configs, healthchecks, Redis', async (t) => {
  const c = yamlFile(join(DOCKER, 'compose.yaml'));
  const services = c.services as Record<string, Obj>;
  const netsOf = (s: Obj): string[] => (Array.isArray(s.networks) ? s.networks : Object.keys(s.networks ?? {}));
  const gateways = ['top', 'middle-a', 'middle-b', 'bottom'];
  t.deepEqual(Object.keys(services).sort(), [...gateways, 'redis'].sort());
  t.deepEqual(Object.keys(c.networks).sort(), ['l2', 'l3', 'l4']);
  t.deepEqual(netsOf(services.top!), ['l4']);
  t.deepEqual(netsOf(services['middle-a']!).sort(), ['l3', 'l4']);
  t.deepEqual(netsOf(services['middle-b']!).sort(), ['l3', 'l4']);
  t.deepEqual(netsOf(services.bottom!).sort(), ['l2', 'l3']);
  t.deepEqual(netsOf(services.redis!), ['l3']);
  t.false(netsOf(services.bottom!).some((n) => netsOf(services.top!).includes(n)), 'bottom shares no network with top');
  for (const n of Object.keys(c.volumes)) t.true(gateways.some((g) => (services[g]!.volumes as string[]).some((v) => v.startsWith(`${n}:`))));

  // who answers to which name on which network
  const dns = (name: string, from: string): boolean =>
    Object.entries(services).some(([sn, s]) => {
      const aliases = Array.isArray(s.networks) ? {} : (s.networks as Record<string, Obj | null>);
      return netsOf(s).some((net) => netsOf(services[from]!).includes(net) && (sn === name || ((aliases[net]?.aliases ?? []) as string[]).includes(name)));
    });

  for (const [name, s] of Object.entries(services)) {
    t.truthy(s.healthcheck?.test, `${name} has a healthcheck`);
    if (name === 'redis') continue;
    t.regex(JSON.stringify(s.healthcheck.test), /\/healthz/);
    const mounts = (s.volumes as string[]).map((v) => v.split(':'));
    const cfgMount = mounts.find((m) => m[1] === '/etc/estgw/gateway.toml');
    t.truthy(cfgMount, `${name} mounts gateway.toml`);
    t.is(cfgMount![2], 'ro');
    t.true(mounts.some((m) => m[1] === '/var/lib/estgw' && !m[0]!.startsWith('.')), `${name} keeps state in a named volume`);
    const file = resolve(DOCKER, cfgMount![0]!);
    t.true(existsSync(file), file);
    const cfg = await loadConfigFile(file);
    t.is(cfg.server.listen, '0.0.0.0:8085');
    t.is(cfg.server.data_dir, '/var/lib/estgw');
    const ups = [...Object.values(cfg.labels).map((l) => l.upstream), ...Object.values(cfg.cas).map((x) => x.request)].filter((u) => u !== undefined);
    for (const u of ups) {
      const host = new URL(u.url).hostname;
      t.true(dns(host, name), `${name} reaches its upstream ${host}`);
      for (const p of [u.trust, u.cert, u.key].filter(Boolean) as string[]) t.regex(p, /^\/(etc\/estgw|var\/lib\/estgw)\//);
    }
    if (name === 'top') t.is(ups.length, 0);
    if (name.startsWith('middle')) {
      t.is(s.environment?.REDIS_URL, 'redis://redis:6379');
      t.true(dns('redis', name));
    }
  }
  t.false(dns('top', 'bottom'), 'bottom cannot resolve top');
  t.false(dns('redis', 'top'));
});

// ---- systemd ----

function unit(path: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';') || line.startsWith('[')) continue;
    const i = line.indexOf('=');
    const k = line.slice(0, i);
    m.set(k, [...(m.get(k) ?? []), line.slice(i + 1)]);
  }
  return m;
}

const HARDENING: Record<string, string> = {
  User: 'estgw',
  NoNewPrivileges: 'yes',
  ProtectSystem: 'strict',
  ProtectHome: 'yes',
  PrivateTmp: 'yes',
  ReadWritePaths: '/var/lib/estgw',
  CapabilityBoundingSet: '',
  RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
  SystemCallFilter: '@system-service',
  Restart: 'on-failure',
  StateDirectory: 'estgw',
};

for (const [file, sub] of [['estgw.service', ['serve']], ['estgw-client.service', ['client', 'run']]] as const) {
  test(`systemd ${file}: hardening and a command the CLI knows`, (t) => {
    const u = unit(join(DEPLOY, 'systemd', file));
    for (const [k, v] of Object.entries(HARDENING)) t.deepEqual(u.get(k), [v], k);
    const exec = u.get('ExecStart');
    t.is(exec?.length, 1);
    const argv = exec![0]!.split(/\s+/);
    const cmdAt = /(^|\/)estgw$/.test(argv[0]!) ? 1 : /(^|\/)node$/.test(argv[0]!) && /\/dist\/src\/cli\/main\.js$/.test(argv[1]!) ? 2 : -1;
    t.not(cmdAt, -1, `ExecStart runs estgw: ${exec![0]}`);
    t.deepEqual(argv.slice(cmdAt, cmdAt + sub.length), [...sub]);
    t.true(argv.includes('--config'));
    if (file === 'estgw-client.service') {
      t.is(argv[argv.indexOf('--config') + 1], '/etc/estgw/edge-client.toml');
      t.deepEqual(u.get('ExecReload'), ['/bin/kill -HUP $MAINPID']);
    }
  });
}

// ---- Dockerfile ----

test('Dockerfile: two stages, non-root user, healthcheck, port, entrypoint', (t) => {
  const text = readFileSync(join(DOCKER, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const instr = (name: string) => lines.filter((l) => l.toUpperCase().startsWith(`${name} `)).map((l) => l.slice(name.length + 1).trim());
  const froms = instr('FROM');
  t.is(froms.length, 2);
  for (const f of froms) t.regex(f, /^node:20-bookworm-slim\b/);
  const users = instr('USER');
  t.true(users.length > 0);
  t.false(/^(root|0)(:|$)/.test(users.at(-1)!), 'runs as non-root');
  t.regex(users.at(-1)!, /^(estgw|10001)/);
  t.regex(text, /--uid 10001/);
  const hc = instr('HEALTHCHECK');
  t.is(hc.length, 1);
  t.regex(hc[0]!, /\/healthz/);
  t.regex(hc[0]!, /https/);
  t.deepEqual(instr('EXPOSE'), ['8085']);
  t.deepEqual(JSON.parse(instr('ENTRYPOINT')[0]!), ['node', 'dist/src/cli/main.js']);
  t.deepEqual(JSON.parse(instr('CMD')[0]!), ['serve', '--config', '/etc/estgw/gateway.toml']);
  const vols = JSON.parse(instr('VOLUME')[0]!) as string[];
  t.deepEqual(vols.sort(), ['/etc/estgw', '/var/lib/estgw']);
  t.true(instr('RUN').some((r) => r.includes('npm ci')) && instr('RUN').some((r) => r.includes('npm prune --omit=dev')));
});

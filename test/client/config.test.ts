// Both configuration front ends produce the same CertSpecs: our own TOML and
// IoT Edge's /etc/aziot/config.toml (the tutorial's and edgelet/doc/est.md's).
import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAziotConfig } from '../../src/client/aziot-config.js';
import { loadClientConfig } from '../../src/client/config.js';
import { ConfigError } from '../../src/config/load.js';

test.beforeEach(async (t) => {
  t.context = await mkdtemp(join(tmpdir(), 'estgw-client-config-'));
});
test.afterEach.always(async (t) => rm(t.context as string, { recursive: true, force: true }));

async function file(dir: string, name: string, text: string): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, text);
  return p;
}

test('own TOML: [defaults] shared, per-certificate overrides, relative paths from the file, policy spans', async (t) => {
  const dir = t.context as string;
  await writeFile(join(dir, 'pw'), 'secret\n');
  const f = await file(dir, 'client.toml', `
status_file = "state/status.json"
metrics_listen = "127.0.0.1:9464"
[defaults]
url = "https://gw.plant.local:8085/.well-known/est"
trust = "ca.pem"
username = "estuser"
password_file = "pw"
threshold = "60m"
retry = "90min"
[certs.est-id]
common_name = "line-7"
cert = "id/cert.pem"
key = "id/key.pem"
bootstrap_cert = "/etc/estgw/boot.pem"
bootstrap_key = "/etc/estgw/boot.key"
method = "simpleenroll"
[certs.mqtt]
subject = "/O=Plant/OU=Line 7/CN=broker"
dns = ["broker.line7.local"]
ips = ["10.0.7.2"]
cert = "/etc/mosquitto/cert.pem"
key = "/etc/mosquitto/key.pem"
identity = "est-id"
threshold = "80%"
rotate_key = false
key_type = "rsa2048"
label = "servers"
post_renew = "systemctl reload mosquitto"
`);
  const cfg = await loadClientConfig(f);
  t.is(cfg.statusFile, join(dir, 'state/status.json'));
  t.is(cfg.metricsListen, '127.0.0.1:9464');
  const [id, mqtt] = cfg.certs;
  t.is(id!.name, 'est-id');
  t.deepEqual(id!.subject, [['CN', 'line-7']]);
  t.deepEqual(id!.trustFiles, [join(dir, 'ca.pem')]);
  t.is(id!.certFile, join(dir, 'id/cert.pem'));
  t.deepEqual(id!.auth, { username: 'estuser', password: 'secret', bootstrapCert: '/etc/estgw/boot.pem', bootstrapKey: '/etc/estgw/boot.key' });
  t.is(id!.method, 'simpleenroll');
  t.deepEqual(id!.policy.threshold, { kind: 'duration', ms: 3_600_000 });
  t.deepEqual(id!.policy.retry, { kind: 'duration', ms: 5_400_000 });
  t.deepEqual(mqtt!.subject, [['O', 'Plant'], ['OU', 'Line 7'], ['CN', 'broker']]);
  t.deepEqual(mqtt!.subjectAltNames, [{ type: 'dns', value: 'broker.line7.local' }, { type: 'ip', value: '10.0.7.2' }]);
  t.is(mqtt!.auth.identity, 'est-id');
  t.deepEqual(mqtt!.policy.threshold, { kind: 'percent', percent: 80 });
  t.false(mqtt!.policy.rotateKey);
  t.is(mqtt!.keyType, 'rsa2048');
  t.is(mqtt!.label, 'servers');
  t.is(mqtt!.method, 'simplereenroll', 'reenroll by default');
  t.is(mqtt!.pop, 'auto');
  t.is(mqtt!.postRenew, 'systemctl reload mosquitto');
});

test('own TOML: every problem is reported with its path', async (t) => {
  const dir = t.context as string;
  const f = await file(dir, 'bad.toml', `
[defaults]
threshold = "5 parsecs"
colour = "blue"
[certs.a]
cert = "a.pem"
key = "a.key"
identity = "nobody"
`);
  const e = await t.throwsAsync(loadClientConfig(f), { instanceOf: ConfigError });
  const problems = (e as ConfigError).problems.join('\n');
  t.regex(problems, /defaults\.threshold: threshold "5 parsecs" is invalid/);
  t.regex(problems, /defaults\.colour: unknown key/);
  const f2 = await file(dir, 'bad2.toml', `
[certs.a]
cert = "a.pem"
key = "a.key"
identity = "nobody"
`);
  const e2 = await t.throwsAsync(loadClientConfig(f2), { instanceOf: ConfigError });
  const p2 = (e2 as ConfigError).problems.join('\n');
  t.regex(p2, /certs\.a\.url: required/);
  t.regex(p2, /certs\.a\.trust: required/);
  t.regex(p2, /certs\.a: subject or common_name is required/);
  t.regex(p2, /certs\.a\.identity: no \[certs\.nobody\]/);
  const f3 = await file(dir, 'bad3.toml', `
[defaults]
url = "https://gw/.well-known/est"
trust = "ca.pem"
[certs.a]
common_name = "a"
cert = "same.pem"
key = "a.key"
[certs.b]
common_name = "b"
cert = "b.pem"
key = "same.pem"
`);
  await t.throwsAsync(loadClientConfig(f3), { message: /certs\.b\.key: .*same\.pem is already used by certs\.a\.cert/ });
});

// The tutorial's configuration, verbatim apart from nothing: aziot's own "60m" threshold included.
const TUTORIAL = `
[provisioning]
source = "dps"
global_endpoint = "https://global.azure-devices-provisioning.net"
id_scope = "<DPS-ID-SCOPE>"

[provisioning.attestation]
method = "x509"
registration_id = "myiotedgedevice"

[provisioning.attestation.identity_cert]
method = "est"
common_name = "myiotedgedevice"

[provisioning.attestation.identity_cert.auto_renew]
rotate_key = false
threshold = "60m"
retry = "4%"

[cert_issuance.est]
    trusted_certs = [
        "file:///var/aziot/certs/cacert.crt.pem",
    ]

[cert_issuance.est.auth]
username = "estuser"
password = "estpwd"

[cert_issuance.est.urls]
default = "https://localhost:8085/.well-known/est"
`;

test('aziot: the tutorial\'s config.toml gives the device identity certificate, Basic, the file:// trust anchor', async (t) => {
  const dir = t.context as string;
  const cfg = await loadAziotConfig(await file(dir, 'config.toml', TUTORIAL), { outDir: join(dir, 'out') });
  t.is(cfg.certs.length, 1);
  const c = cfg.certs[0]!;
  t.is(c.name, 'device-id');
  t.deepEqual(c.subject, [['CN', 'myiotedgedevice']]);
  t.is(c.url, 'https://localhost:8085/.well-known/est');
  t.deepEqual(c.trustFiles, ['/var/aziot/certs/cacert.crt.pem']);
  t.deepEqual(c.auth, { username: 'estuser', password: 'estpwd' });
  t.deepEqual(c.policy.threshold, { kind: 'duration', ms: 3_600_000 });
  t.deepEqual(c.policy.retry, { kind: 'percent', percent: 4 });
  t.false(c.policy.rotateKey);
  t.is(c.certFile, join(dir, 'out', 'device-id.cert.pem'));
  t.is(cfg.statusFile, join(dir, 'out', 'status.json'));
});

test('aziot: bootstrap certificate → managed EST identity; Edge CA over EST with its own URL; subject tables', async (t) => {
  const dir = t.context as string;
  const f = await file(dir, 'config.toml', `
[provisioning]
source = "manual"
iothub_hostname = "example.azure-devices.net"
device_id = "my-device"
[provisioning.authentication]
method = "x509"
[provisioning.authentication.identity_cert]
method = "est"
subject = { O = "Contoso", CN = "my-device" }
[edge_ca]
method = "est"
url = "https://est-ca.example.org/.well-known/est/"
[edge_ca.auto_renew]
threshold = "90%"
retry = "1%"
rotate_key = true
[cert_issuance.est]
trusted_certs = ["file:///var/secrets/est-id-ca.pem"]
[cert_issuance.est.auth]
bootstrap_identity_cert = "file:///var/secrets/est-bootstrap-id.pem"
bootstrap_identity_pk = "file:///var/secrets/est-bootstrap-id.key.pem"
identity_cert = "file:///var/secrets/est-id.pem"
identity_pk = "file:///var/secrets/est-id.key.pem"
[cert_issuance.est.identity_auto_renew]
rotate_key = true
threshold = "80%"
retry = "4%"
[cert_issuance.est.urls]
default = "https://est.example.org/.well-known/est"
`);
  const cfg = await loadAziotConfig(f, { outDir: dir });
  t.deepEqual(cfg.certs.map((c) => c.name), ['est-id', 'est-id-2', 'device-id', 'edge-ca']);
  const byName = Object.fromEntries(cfg.certs.map((c) => [c.name, c]));
  const estId = byName['est-id']!;
  t.deepEqual(estId.subject, [['CN', 'my-device']], 'the EST identity carries the device ID');
  t.is(estId.certFile, '/var/secrets/est-id.pem');
  t.deepEqual(estId.auth, { bootstrapCert: '/var/secrets/est-bootstrap-id.pem', bootstrapKey: '/var/secrets/est-bootstrap-id.key.pem' });
  const dev = byName['device-id']!;
  t.deepEqual(dev.subject, [['O', 'Contoso'], ['CN', 'my-device']]);
  t.is(dev.auth.identity, 'est-id');
  t.is(dev.auth.bootstrapCert, '/var/secrets/est-bootstrap-id.pem');
  const edge = byName['edge-ca']!;
  t.true(edge.ca);
  t.is(edge.url, 'https://est-ca.example.org/.well-known/est/');
  t.deepEqual(edge.subject, [['CN', 'my-device Edge CA']]);
  t.deepEqual(edge.policy.threshold, { kind: 'percent', percent: 90 });
  t.is(edge.auth.identity, 'est-id-2', 'a different server gets its own EST identity');
  t.is(byName['est-id-2']!.certFile, join(dir, 'est-id-2.cert.pem'));
});

test('aziot: PKCS#11 keys and non-file URIs get a clear message', async (t) => {
  const dir = t.context as string;
  const f = await file(dir, 'config.toml', `
[provisioning]
source = "dps"
[provisioning.attestation]
method = "x509"
registration_id = "dev"
[provisioning.attestation.identity_cert]
method = "est"
common_name = "dev"
[cert_issuance.est]
trusted_certs = ["https://example.org/ca.pem"]
[cert_issuance.est.auth]
bootstrap_identity_cert = "file:///var/secrets/boot.pem"
bootstrap_identity_pk = "pkcs11:slot-id=0;object=est-bootstrap-id?pin-value=1234"
[cert_issuance.est.urls]
default = "https://est.example.org/.well-known/est"
`);
  const e = await t.throwsAsync(loadAziotConfig(f, { outDir: dir }), { instanceOf: ConfigError });
  const msg = (e as ConfigError).problems.join('\n');
  t.regex(msg, /bootstrap_identity_pk: "pkcs11:slot-id=0;object=est-bootstrap-id\?pin-value=1234" is a PKCS#11 URI; estgw keeps keys in files only/);
  t.regex(msg, /trusted_certs\[0\]: unsupported URI "https:\/\/example.org\/ca.pem": only file:\/\/ is supported/);
});

test('aziot: a file without EST certificates, or a bad threshold, is refused', async (t) => {
  const dir = t.context as string;
  const none = await file(dir, 'none.toml', '[provisioning]\nsource = "manual"\nconnection_string = "x"\n');
  await t.throwsAsync(loadAziotConfig(none, { outDir: dir }), { message: /no certificate is issued over EST/ });
  const bad = await file(dir, 'bad.toml', TUTORIAL.replace('"60m"', '"soon"'));
  await t.throwsAsync(loadAziotConfig(bad, { outDir: dir }), { message: /auto_renew\.threshold.*"soon" is invalid/ });
});

test('revocation keys: [crl] on by default with refresh 1h; out relative to the file; reenroll_revoked off unless set, per certificate; out without check refused', async (t) => {
  const dir = t.context as string;
  const body = (extra: string) => `
${extra}
[defaults]
url = "https://gw.plant.local:8085/.well-known/est"
trust = "ca.pem"
username = "estuser"
password = "x"
[certs.a]
common_name = "a"
cert = "a.pem"
key = "a.key"
[certs.b]
common_name = "b"
cert = "b.pem"
key = "b.key"
reenroll_revoked = true
`;
  const plain = await loadClientConfig(await file(dir, 'plain.toml', body('')));
  t.deepEqual(plain.crl, { refreshMs: 3600_000 });
  t.deepEqual(plain.certs.map((c) => c.reenrollRevoked), [false, true]);
  const out = await loadClientConfig(await file(dir, 'out.toml', body('[crl]\nout = "crls/plant.pem"\nrefresh = "15m"')));
  t.deepEqual(out.crl, { refreshMs: 900_000, out: join(dir, 'crls/plant.pem') });
  const off = await loadClientConfig(await file(dir, 'off.toml', body('[crl]\ncheck = false')));
  t.is(off.crl, undefined);
  const bad = await t.throwsAsync(loadClientConfig(await file(dir, 'bad.toml', body('[crl]\ncheck = false\nout = "x.pem"'))), { instanceOf: ConfigError });
  t.regex(bad!.message, /crl\.out needs crl\.check = true/);
  const typo = await t.throwsAsync(loadClientConfig(await file(dir, 'typo.toml', body('[crl]\nrefresh = "soon"'))), { instanceOf: ConfigError });
  t.regex(typo!.message, /crl/);
});

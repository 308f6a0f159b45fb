// Grant identity patterns bound to role: what an identity of each kind meets.
import test from 'ava';
import { type Identity, IdentityPattern, identityString } from '../../src/policy/identity.js';

const device: Identity = { kind: 'cert', name: 'bottom-ra', role: 'device' };
const ra: Identity = { kind: 'cert', name: 'bottom-ra', role: 'ra' };
const user: Identity = { kind: 'user', name: 'bottom-ra', role: 'device' };
const both: Identity = { kind: 'cert', name: 'sensor-1', role: 'device', user: 'estuser' };

test('identity strings carry the role of a certificate', (t) => {
  t.is(identityString(device), 'cert:device/bottom-ra');
  t.is(identityString(ra), 'cert:ra/bottom-ra');
  t.is(identityString(user), 'user:bottom-ra');
});

test('cert:ra/NAME is met only by an RA certificate, cert:device/NAME only by a device certificate', (t) => {
  const p = new IdentityPattern('cert:ra/bottom-ra');
  t.is(p.match(ra), 'cert');
  t.is(p.match(device), undefined);
  t.is(p.match(user), undefined);
  t.is(new IdentityPattern('cert:device/*').match(device), 'cert');
  t.is(new IdentityPattern('cert:device/*').match(ra), undefined);
});

test('a device cannot smuggle a role into its CN: CN "ra/x" is a device named "ra/x"', (t) => {
  const sly: Identity = { kind: 'cert', name: 'ra/x', role: 'device' };
  t.is(new IdentityPattern('cert:ra/x').match(sly), undefined);
  t.is(new IdentityPattern('cert:ra/*').match(sly), undefined);
  t.is(new IdentityPattern('cert:device/ra/x').match(sly), 'cert');
});

test('role-less and wildcard patterns are not explicit; user and role-qualified ones are', (t) => {
  t.false(new IdentityPattern('*').explicit);
  t.false(new IdentityPattern('cert:bottom-ra').explicit);
  t.true(new IdentityPattern('cert:ra/bottom-ra').explicit);
  t.true(new IdentityPattern('cert:device/*').explicit);
  t.true(new IdentityPattern('user:bottom-ra').explicit);
  t.false(new IdentityPattern('user:*').explicit, 'any user is anyone with the bootstrap password');
});

test('a client that showed a certificate and a password meets user patterns through its password', (t) => {
  t.is(new IdentityPattern('user:estuser').match(both), 'user');
  t.is(new IdentityPattern('cert:sensor-*').match(both), 'cert');
  t.is(new IdentityPattern('*').match(both), 'cert');
  t.throws(() => new IdentityPattern('sensor-1'), { message: /must be/ });
});

// probe() reports this host without ever throwing; open() opens the real kernel or fails typed.
import { accessSync, constants as fsc } from 'node:fs';
import os from 'node:os';
import { expect, it } from 'vitest';
import { KvmError, open, probe } from '../../lib/index.js';
import { describeKvm } from '../helpers/kvm.js';
import { thrown } from '../fixtures/kvm-cases.js';

describeKvm('probe()', () => {
  it('reports this host: available, API 12, GUEST_MEMFD_FLAGS 3, VM types [0], no conversion', () => {
    const r = probe();
    expect(r.kvm).toEqual({ available: true, path: '/dev/kvm' });
    expect(r.apiVersion).toBe(12);
    expect(r.kernel).toContain(os.release());
    expect(r.capabilities.GUEST_MEMFD_FLAGS).toBe(3);
    expect(r.capabilities.GUEST_MEMFD).toBe(1);
    expect(r.capabilities.USER_MEMORY2).toBe(1);
    expect(r.capabilities.MEMORY_ATTRIBUTES).toBe(0);
    expect(r.vmTypes).toEqual([0]);
    expect(r.guestMemfdFlags).toEqual({ mmap: true, initShared: true, raw: 3 });
    expect(r.conversion).toEqual({ mechanism: null, inPlace: false });
  });

  it('agrees with what the opened Kvm says', () => {
    const r = probe();
    using kvm = open({ backend: 'kvm' });
    expect(r.apiVersion).toBe(kvm.apiVersion);
    expect(r.vmTypes).toEqual(kvm.vmTypes());
    for (const [name, v] of Object.entries(r.capabilities)) expect(kvm.checkExtension(name), name).toBe(v);
  });

  it('is plain JSON: it survives a round trip unchanged', () => {
    const r = probe();
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });

  it("with '/nonexistent' reports available: false and ENOENT, without throwing", () => {
    const r = probe('/nonexistent');
    expect(r.kvm.available).toBe(false);
    expect(r.kvm.path).toBe('/nonexistent');
    expect(r.kvm.error?.code).toBe('ENOENT');
    expect(r.kvm.error?.message).toContain('ENOENT');
    expect([r.apiVersion, r.vmTypes, r.guestMemfdFlags]).toEqual([null, [], null]);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });

  it('with a path that is not a KVM device (/dev/null) reports ENOTTY, without throwing', () => {
    const r = probe('/dev/null');
    expect(r.kvm.available).toBe(false);
    expect(r.kvm.error?.code).toBe('ENOTTY');
    expect(r.apiVersion).toBeNull();
  });

  it('with a directory reports the open error (EISDIR)', () => {
    expect(probe('/tmp').kvm.error?.code).toBe('EISDIR');
  });
});

describeKvm('open()', () => {
  it("backend 'kvm' opens the real kernel", () => {
    using kvm = open({ backend: 'kvm' });
    expect(kvm.backend).toBe('kvm');
    expect(kvm.apiVersion).toBe(12);
    expect(kvm.closed).toBe(false);
  });

  it("backend 'auto' (the default) picks the real kernel where /dev/kvm opens", () => {
    accessSync('/dev/kvm', fsc.R_OK | fsc.W_OK);
    using a = open();
    using b = open({});
    expect([a.backend, b.backend]).toEqual(['kvm', 'kvm']);
  });

  it('null options fields mean their defaults, like undefined', () => {
    using kvm = open({ backend: null, path: null, profile: null } as never);
    expect(kvm.backend).toBe('kvm');
  });

  it("backend 'kvm' with a bad path is KvmError ENOENT from open", () => {
    const e = thrown(() => open({ backend: 'kvm', path: '/nonexistent' }));
    expect(e).toBeInstanceOf(KvmError);
    expect([e.code, e.errno, e.syscall, e.ioctl]).toEqual(['ENOENT', -os.constants.errno.ENOENT, 'open', undefined]);
  });

  it("backend 'kvm' with a non-KVM device is KvmError ENOTTY from KVM_GET_API_VERSION", () => {
    const e = thrown(() => open({ backend: 'kvm', path: '/dev/null' }));
    expect(e).toBeInstanceOf(KvmError);
    expect([e.code, e.syscall, e.ioctl]).toEqual(['ENOTTY', 'ioctl', 'KVM_GET_API_VERSION']);
  });

  const bad: [string, unknown, 'ERR_INVALID_ARG_TYPE' | 'ERR_OUT_OF_RANGE'][] = [
    ['options a string', 'kvm', 'ERR_INVALID_ARG_TYPE'],
    ['options null', null, 'ERR_INVALID_ARG_TYPE'],
    ['options a number', 1, 'ERR_INVALID_ARG_TYPE'],
    ['options an array', [], 'ERR_INVALID_ARG_TYPE'],
    ['backend a number', { backend: 1 }, 'ERR_INVALID_ARG_TYPE'],
    ['backend unknown', { backend: 'xen' }, 'ERR_OUT_OF_RANGE'],
    ['path a number', { backend: 'kvm', path: 3 }, 'ERR_INVALID_ARG_TYPE'],
    ['profile a number', { backend: 'sim', profile: 5 }, 'ERR_INVALID_ARG_TYPE'],
    ['profile unknown', { backend: 'sim', profile: 'v9' }, 'ERR_OUT_OF_RANGE'],
    ['profile with backend kvm', { backend: 'kvm', profile: 'rfc-v5' }, 'ERR_OUT_OF_RANGE'],
  ];
  it.each(bad.map(([l, o, c]) => [l, c, o] as const))('%s gives %s', (_label, code, opts) => {
    const e = thrown(() => open(opts as never));
    expect(e).toBeInstanceOf(code === 'ERR_INVALID_ARG_TYPE' ? TypeError : RangeError);
    expect(e.code).toBe(code);
  });
});

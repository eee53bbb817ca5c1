#!/usr/bin/env node
// conversions-holds: the main feature, host side. unshare() turns a range private and share() back;
// the host may touch shared pages only. A Hold is a host reference on pages (a pinned page, as a
// vmsplice or an O_DIRECT read takes): each kernel model answers a to-private conversion of held
// pages differently, and this prints what each one does.
//   node examples/conversions-holds.mjs          (the simulator's series profiles)
//   node examples/conversions-holds.mjs --kvm    (this host's kernel too, where it converts in place)
import { open, ConversionBusyError, HostAccessError, KvmError, UnsupportedError } from 'kvm-gmem';

const PAGE = 4096;

function run(kvm, label) {
  console.log(`\n== ${label}`);
  const vm = kvm.createVm();
  const gm = vm.createGuestMemfd({ size: 16 * PAGE, mmap: true, initShared: true });
  const map = gm.map();
  map.write(0, Buffer.from('host data'));

  // 1. A conversion and back: a private page is out of the host's reach, whatever its contents.
  gm.unshare(4 * PAGE, 4 * PAGE);
  console.log('after unshare(4 pages at 16 KiB):', fmt(gm.states()));
  try {
    map.read(4 * PAGE, 1);
  } catch (e) {
    if (!(e instanceof HostAccessError)) throw e;
    console.log(`host read of a private page: ${e.code} at offset ${e.offset} (the process goes on)`);
  }
  gm.share(4 * PAGE, 4 * PAGE);
  console.log('after share:', fmt(gm.states()));

  // 2. Converting pages the host still holds.
  let hold;
  try {
    hold = gm.hold(0, 2 * PAGE);
  } catch (e) {
    if (!(e instanceof UnsupportedError || e instanceof KvmError)) throw e;
    console.log(`hold: ${e.code} (${e.message})`);
    kvm.close();
    return;
  }
  try {
    const { pending } = gm.unshare(0, 4 * PAGE);
    console.log('unshare of 4 pages, 2 of them held: pending', fmt(pending));
    console.log('states while held:', fmt(gm.states(0, 4 * PAGE)));
  } catch (e) {
    if (!(e instanceof ConversionBusyError)) throw e;
    // ConversionBusyError is a KvmError (EAGAIN): nothing from errorOffset on was converted.
    console.log(`unshare of held pages: ${e.code} at offset ${e.errorOffset}; states:`, fmt(gm.states(0, 4 * PAGE)));
  }
  hold.release();
  console.log('after release:', fmt(gm.states(0, 4 * PAGE)));
  kvm.close();
}

function fmt(extents) {
  return extents.map((x) => `${x.state}@${x.offset / PAGE}+${x.length / PAGE}`).join(' ') || '(none)';
}

// rfc-v5: held pages go 'pending' and turn private when the last hold goes.
run(open({ backend: 'sim', profile: 'rfc-v5' }), "simulator, profile 'rfc-v5' (deferred completion)");
// inplace-v8: the conversion fails with EAGAIN, naming the first held page.
run(open({ backend: 'sim', profile: 'inplace-v8' }), "simulator, profile 'inplace-v8' (in-place conversion)");

if (process.argv.includes('--kvm')) {
  const kvm = open({ backend: 'kvm' });
  if (kvm.profile === null) {
    console.log(`\n== this kernel: no conversion ioctl (mechanism null), nothing to show`);
    kvm.close();
  } else {
    run(kvm, `this kernel (conversion mechanism '${kvm.profile}')`);
  }
}

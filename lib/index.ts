// kvm-gmem: the public entry point (exports only; the logic lives in the modules named here).
export { open } from './open.js';
export { probe } from './probe.js';
export {
  KvmError,
  HostAccessError,
  ConversionBusyError,
  GuestMemoryFault,
  UnsupportedError,
  ClosedError,
} from './errors.js';
export { constants } from './constants.js';
export { PAGE_SIZE } from './validate.js';
export type * from './types.js';
export * from './toolkit/index.js';

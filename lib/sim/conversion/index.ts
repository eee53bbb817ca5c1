// The conversion models, by name (lib/sim/profiles.ts picks one per profile).
export { none } from './none.js';
export { rfcV5 } from './rfc-v5.js';
export { inplaceV8 } from './inplace-v8.js';
export type { ConversionModel, ConversionName, FileConversion, GuestWay } from './model.js';

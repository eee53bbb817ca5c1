// The experimenter's toolkit (issue 16): guests built into a VM, C guests, ucall events and a VMM
// loop answering conversion requests. Built on the public API only.
export { createGuest, Guest, programArea, type GuestOptions, type GuestProgram, type RunOptions } from './builder.js';
export { compileGuest, GuestCompileError, GUEST_INCLUDE_DIR, type CompileOptions } from './compile.js';
export { parseElf, type ElfImage, type ElfSegment } from './elf.js';
export { EXCEPTION_PORT, UCALL_PORT } from './layout.js';
export { formatEvent, type ExceptionReport, type GuestEvent } from './ucall.js';
export {
  ConversionLoop,
  conversionMechanism,
  type ConversionMechanismName,
  type ConversionOptions,
  type ConversionRecord,
  type ConversionRegion,
  type ConversionRequest,
} from './conversions.js';

// What every `kvm-gmem` command shares: strict option parsing (util.parseArgs), colour only
// where a terminal shows it, and one line per error.
import { parseArgs, styleText } from 'node:util';

export type OptionSpec = Record<string, { type: 'boolean' | 'string'; short?: string; multiple?: boolean }>;

export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Parses argv against `spec` (unknown flags, a missing value and stray arguments are UsageErrors).
 * Node's own messages are trimmed to their first sentence, which names the option.
 */
export function parseOptions(spec: OptionSpec, args: string[]): Record<string, unknown> {
  try {
    return parseArgs({ args, options: spec, strict: true, allowPositionals: false }).values as Record<string, unknown>;
  } catch (e) {
    const err = e as Error & { code?: string };
    if (!err.code?.startsWith('ERR_PARSE_ARGS')) throw e;
    const flag = /'(-[^' ]+)/.exec(err.message)?.[1];
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`unknown option '${flag}'`);
    if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      throw new UsageError(
        spec[flag?.replace(/^--?/, '') ?? '']?.type === 'boolean' ? `${flag} takes no value` : `${flag} needs a value`,
      );
    }
    const first = err.message.split(/\.\s/)[0]!;
    throw new UsageError(first.charAt(0).toLowerCase() + first.slice(1));
  }
}

interface ColorStream {
  isTTY?: boolean;
  hasColors?: () => boolean;
}

/**
 * Colour when the stream is a terminal that shows it (tty's hasColors() reads NO_COLOR, TERM and
 * FORCE_COLOR); when piped only if FORCE_COLOR asks for it, as Node's own output does.
 */
export function wantsColor(stream: ColorStream, env: NodeJS.ProcessEnv = process.env): boolean {
  if (!stream.isTTY || typeof stream.hasColors !== 'function') {
    return env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false';
  }
  return stream.hasColors();
}

/** util.styleText's shape: a format name ('green', 'bold') or several. */
export type Style = (format: string | string[], text: string) => string;

export const plain: Style = (_format, text) => text;

/** A styler for one stream: util.styleText when colour is wanted there, else the text as is. */
export function styler(stream: ColorStream): Style {
  if (!wantsColor(stream)) return plain;
  // Our own decision stands: newer Node would check the stream again and drop FORCE_COLOR's colours.
  const paint = styleText as unknown as (f: string | string[], t: string, o?: object) => string;
  return (format, text) => paint(format, text, { validateStream: false });
}

/**
 * An error as one line: its code once (library and Node errors start their message with it),
 * then the message. Errors without a code are bugs and keep their stack.
 */
export function errorLine(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'string') return e.stack ?? `${e.name}: ${e.message}`;
  return e.message.startsWith(code) ? e.message : `${code}: ${e.message}`;
}

/**
 * Zig for CodeMirror 6: JupyterLab ships no Zig mode and @codemirror/legacy-modes has none, so this is the
 * C-like stream mode with Zig's keywords, primitive types and `@builtins`.
 */
import { LanguageSupport, StreamLanguage, type StreamParser } from '@codemirror/language';
import { clike } from '@codemirror/legacy-modes/mode/clike';

function words(text: string): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const word of text.split(/\s+/)) {
    if (word) {
      out[word] = true;
    }
  }
  return out;
}

const parser = clike({
  name: 'zig',
  keywords: words(
    'addrspace align allowzero and anyframe anytype asm async await break callconv catch comptime const continue ' +
      'defer else enum errdefer error export extern fn for if inline linksection noalias noinline nosuspend opaque ' +
      'or orelse packed pub resume return struct suspend switch test threadlocal try union unreachable usingnamespace ' +
      'var volatile while'
  ),
  types: words(
    'i8 u8 i16 u16 i32 u32 i64 u64 i128 u128 isize usize c_char c_short c_ushort c_int c_uint c_long c_ulong ' +
      'c_longlong c_ulonglong c_longdouble f16 f32 f64 f80 f128 bool anyopaque void noreturn type anyerror ' +
      'comptime_int comptime_float'
  ),
  blockKeywords: words('else for if switch while struct enum union'),
  atoms: words('true false null undefined'),
  multiLineStrings: false,
  hooks: {
    '@': (stream: any) => {
      stream.eatWhile(/[\w$]/);
      return 'builtin';
    },
    '\\': (stream: any) => {
      if (stream.eat('\\')) {
        stream.skipToEnd(); // a multi-line string literal line: \\text
        return 'string';
      }
      return null;
    }
  }
}) as unknown as StreamParser<unknown>;

/**
 * The Zig language (StreamLanguage) and its support bundle.
 */
export const zigLanguage = StreamLanguage.define(parser);

export function zig(): LanguageSupport {
  return new LanguageSupport(zigLanguage);
}

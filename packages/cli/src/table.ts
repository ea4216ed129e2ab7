// Options declared once: each declaration makes commander's Option and carries the parsed value's type,
// so a tool's `ctx.opts` is typed from the same table that registers its flags (xdp-tools' params.h, typed).
import { Option } from 'commander'
import type { Command } from 'commander'
import { parseChoice, parseIntOption, parseScaledInt, parseSeconds } from './options.js'

type Range = { min?: number; max?: number }

interface Settings {
  /** Turns the text (and the value so far, for repeatable options) into the value. */
  parse?(value: string, previous: unknown): unknown
  default?: unknown
  /** What the help shows as the default, when not the default itself. */
  defaultText?: string
  /** Commander checks the value against these and lists them in the help. */
  choices?: readonly string[]
  hidden?: boolean
  required?: boolean
}

/** One option: `flags` and help for commander, and (as a type only) the value a run sees. */
export class OptionDecl<T> {
  /** Type only: the parsed value, including undefined when the option may be absent. */
  declare readonly value: T

  constructor(
    readonly flags: string,
    readonly description: string,
    private readonly settings: Settings = {},
  ) {}

  /** A fresh commander Option (a Command takes ownership of the ones it is given). */
  toOption(): Option {
    const s = this.settings
    const option = new Option(this.flags, this.description)
    if (s.choices !== undefined) option.choices(s.choices)
    if (s.parse !== undefined) option.argParser(s.parse)
    if ('default' in s) option.default(s.default, s.defaultText)
    if (s.required === true) option.makeOptionMandatory()
    if (s.hidden === true) option.hideHelp()
    return option
  }
}

/** The long flag of a flags string ("-m, --mode <mode>" → "--mode"), for error messages. */
function longFlag(flags: string): string {
  return /--[\w-]+/.exec(flags)?.[0] ?? flags
}

interface Common {
  hidden?: boolean
  /** What the help shows as the default, when not the default itself. */
  defaultText?: string
  /** Commander refuses the command without it (exit 2). */
  required?: boolean
}

/** Settings that make the value always present: a default, or the option required. */
type Present<T> = { default: T } | { required: true }

/** A switch: `--x` is true when given (else undefined); `--no-x` is true unless given. */
export function flagOption<F extends string>(flags: F, description: string, settings: { hidden?: boolean } = {}): OptionDecl<F extends `--no-${string}` ? boolean : boolean | undefined> {
  return new OptionDecl(flags, description, settings)
}

/** A text value, as given. */
export function stringOption(flags: string, description: string, settings: Common & Present<string>): OptionDecl<string>
export function stringOption(flags: string, description: string, settings?: Common): OptionDecl<string | undefined>
export function stringOption(flags: string, description: string, settings: Common & { default?: string } = {}): OptionDecl<string | undefined> {
  return new OptionDecl(flags, description, settings)
}

/** A value made by `parse` (which throws a UsageError on bad text: exit 2); `previous` is the value so far, for repeatable options. */
export function valueOption<T>(flags: string, description: string, parse: (value: string, previous: T | undefined) => T, settings: Common & Present<NoInfer<T>>): OptionDecl<T>
export function valueOption<T>(flags: string, description: string, parse: (value: string, previous: T | undefined) => T, settings?: Common): OptionDecl<T | undefined>
export function valueOption<T>(flags: string, description: string, parse: (value: string, previous: T | undefined) => T, settings: Common & { default?: T } = {}): OptionDecl<T | undefined> {
  return new OptionDecl(flags, description, { ...settings, parse })
}

/** An integer within [min, max], decimal or 0x-hex (parseIntOption). */
export function intOption(flags: string, description: string, settings: Range & Common & Present<number>): OptionDecl<number>
export function intOption(flags: string, description: string, settings?: Range & Common): OptionDecl<number | undefined>
export function intOption(flags: string, description: string, settings: Range & Common & { default?: number } = {}): OptionDecl<number | undefined> {
  const { min, max, ...rest } = settings
  return new OptionDecl(flags, description, { ...rest, parse: parseIntOption(longFlag(flags), range(min, max)) })
}

/** A count or rate with an optional k/M/G suffix (parseScaledInt). */
export function scaledIntOption(flags: string, description: string, settings: Range & Common & Present<number>): OptionDecl<number>
export function scaledIntOption(flags: string, description: string, settings?: Range & Common): OptionDecl<number | undefined>
export function scaledIntOption(flags: string, description: string, settings: Range & Common & { default?: number } = {}): OptionDecl<number | undefined> {
  const { min, max, ...rest } = settings
  return new OptionDecl(flags, description, { ...rest, parse: parseScaledInt(longFlag(flags), range(min, max)) })
}

/** Seconds: "10", "2.5", "500ms", "2m" (parseSeconds). */
export function secondsOption(flags: string, description: string, settings: Range & Common & Present<number>): OptionDecl<number>
export function secondsOption(flags: string, description: string, settings?: Range & Common): OptionDecl<number | undefined>
export function secondsOption(flags: string, description: string, settings: Range & Common & { default?: number } = {}): OptionDecl<number | undefined> {
  const { min, max, ...rest } = settings
  return new OptionDecl(flags, description, { ...rest, parse: parseSeconds(longFlag(flags), range(min, max)) })
}

/**
 * One of a fixed set of words. `listed: true` lets commander check it and list the choices in the help
 * (its own error message); otherwise parseChoice checks it ("--x: expected one of …").
 */
export function choiceOption<const C extends string>(flags: string, description: string, choices: readonly C[], settings: Common & Present<NoInfer<C>> & { listed?: boolean }): OptionDecl<C>
export function choiceOption<const C extends string>(flags: string, description: string, choices: readonly C[], settings?: Common & { listed?: boolean }): OptionDecl<C | undefined>
export function choiceOption<const C extends string>(flags: string, description: string, choices: readonly C[], settings: Common & { default?: C; listed?: boolean } = {}): OptionDecl<C | undefined> {
  const { listed, ...rest } = settings
  return new OptionDecl(flags, description, listed === true ? { ...rest, choices } : { ...rest, parse: parseChoice(longFlag(flags), choices) })
}

function range(min: number | undefined, max: number | undefined): Range {
  return { ...(min === undefined ? {} : { min }), ...(max === undefined ? {} : { max }) }
}

export type OptionDecls = Record<string, OptionDecl<unknown>>

type ValueOf<D> = D extends OptionDecl<infer T> ? T : never
type MaybeAbsent<D extends OptionDecls> = { [K in keyof D]: undefined extends ValueOf<D[K]> ? K : never }[keyof D]
type Simplify<T> = { [K in keyof T]: T[K] } & {}

/** The parsed options of a table: always-present values required, the others optional. */
export type OptionsOf<D extends OptionDecls | OptionTable<object>> =
  D extends OptionTable<infer O>
    ? O
    : D extends OptionDecls
      ? Simplify<{ -readonly [K in Exclude<keyof D, MaybeAbsent<D>>]: ValueOf<D[K]> } & { -readonly [K in MaybeAbsent<D>]?: Exclude<ValueOf<D[K]>, undefined> }>
      : never

/** A command's options, in help order; `register` adds them, `values` reads them back typed. */
export class OptionTable<O extends object> {
  /** Type only: the parsed options. */
  declare readonly options: O

  constructor(readonly declarations: OptionDecls) {}

  /** Adds every option (in declaration order); a key that is not commander's name for its flag is a programming error. */
  register(program: Command): Command {
    for (const [key, declaration] of Object.entries(this.declarations)) {
      const option = declaration.toOption()
      if (option.attributeName() !== key) throw new Error(`option table: key "${key}" does not match ${declaration.flags} (commander calls it "${option.attributeName()}")`)
      program.addOption(option)
    }
    return program
  }

  /** The parsed values after `program.parse`. */
  values(program: Command): O {
    const values: Record<string, unknown> = {}
    for (const key of Object.keys(this.declarations)) {
      const value: unknown = program.getOptionValue(key)
      if (value !== undefined) values[key] = value
    }
    // Each value came from the parser or default of the declaration its type was taken from.
    return values as O
  }
}

/** `optionTable({ rate: intOption('--rate <pps>', …), … })`: register with `.register(program)`, type with OptionsOf. */
export function optionTable<D extends OptionDecls>(declarations: D): OptionTable<OptionsOf<D>> {
  return new OptionTable<OptionsOf<D>>(declarations)
}

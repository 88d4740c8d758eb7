/**
 * Which sections `npm run bench -- SECTION...` runs, and bench/results.json as the
 * merge of this run's sections into the file's last results for the others.
 */
import type { Result } from './harness.js';

/** The sections in the order a plain `npm run bench` runs them; the names results.json keys them by. */
export const SECTION_NAMES = ['packetCost', 'scaling', 'forwarding', 'maglev', 'controlPlane', 'flood'] as const;
export type SectionName = (typeof SECTION_NAMES)[number];

/** What the command line asks for: the usage text, or these sections in this order. */
export type Selection = { help: true } | { help: false; sections: SectionName[] };

/** A command line the bench does not take: the message names what is wrong. */
export class UsageError extends Error {}

const isSectionName = (name: string): name is SectionName => (SECTION_NAMES as readonly string[]).includes(name);

/** Parses the bench's arguments: none (every section), `--help`/`-h`, or section names. */
export function parseSelection(args: readonly string[]): Selection {
  if (args.length === 0) return { help: false, sections: [...SECTION_NAMES] };
  if (args.length === 1 && (args[0] === '--help' || args[0] === '-h')) return { help: true };
  const sections: SectionName[] = [];
  for (const arg of args) {
    if (!isSectionName(arg)) throw new UsageError(`unknown section ${JSON.stringify(arg)}: the sections are ${SECTION_NAMES.join(', ')}`);
    if (sections.includes(arg)) throw new UsageError(`section ${arg} named twice`);
    sections.push(arg);
  }
  return { help: false, sections };
}

/** bench/results.json. */
export interface BenchResults {
  /** When the file was last written. */
  date: string;
  machine: Record<string, unknown>;
  /** Each section's rows, as the bench printed them. */
  sections: Partial<Record<SectionName, Result[]>>;
  /** When each section was last measured. */
  sectionDates: Partial<Record<SectionName, string>>;
  /** Summaries sections give besides their rows, under their own names (the flood section's `flood`). */
  [summary: string]: unknown;
}

/** What one run measured: rows per section it ran, and summaries by section name. */
export interface RunResults {
  sections: Partial<Record<SectionName, Result[]>>;
  summaries: Partial<Record<SectionName, unknown>>;
}

/**
 * bench/results.json's last content (`text`), checked to have the shape the bench
 * writes, so a merge keeps what it holds; an error names what is wrong.
 */
export function parseResults(text: string): Partial<BenchResults> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`bench/results.json is not JSON (${(error as Error).message}): move it away to start afresh`);
  }
  const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (!isObject(parsed)) throw new Error('bench/results.json: not a JSON object');
  for (const field of ['sections', 'sectionDates']) {
    if (field in parsed && !isObject(parsed[field])) throw new Error(`bench/results.json: ${field} is not an object`);
  }
  return parsed;
}

/**
 * The file after a run: this run's sections (and their summaries) replace the same
 * sections of `last` (the file's content, or null when there is none); the others stay
 * as they were, dated by when they were measured.
 */
export function mergeResults(
  last: Partial<BenchResults> | null,
  run: RunResults,
  date: string,
  machine: Record<string, unknown>,
): BenchResults {
  const sectionDates: BenchResults['sectionDates'] = {};
  // A file written before sections were dated: its sections date from the file.
  for (const name of Object.keys(last?.sections ?? {}) as SectionName[]) {
    const when = last?.sectionDates?.[name] ?? last?.date;
    if (when) sectionDates[name] = when;
  }
  for (const name of Object.keys(run.sections) as SectionName[]) sectionDates[name] = date;
  return {
    ...last,
    ...run.summaries,
    date,
    machine,
    sections: { ...last?.sections, ...run.sections },
    sectionDates,
  };
}

/**
 * `npm run bench -- SECTION...`: which sections run, and bench/results.json keeping
 * the sections a run did not measure.
 */
import { describe, expect, test } from 'vitest';
import { mergeResults, parseResults, parseSelection, SECTION_NAMES, UsageError } from '../../bench/sections.js';

describe('section selection', () => {
  test('no arguments run every section in the bench order', () => {
    expect(parseSelection([])).toEqual({
      help: false,
      sections: ['packetCost', 'scaling', 'forwarding', 'maglev', 'controlPlane', 'flood'],
    });
  });

  test('named sections run alone, in the order given', () => {
    expect(parseSelection(['flood'])).toEqual({ help: false, sections: ['flood'] });
    expect(parseSelection(['maglev', 'packetCost'])).toEqual({ help: false, sections: ['maglev', 'packetCost'] });
  });

  test('--help and -h ask for the usage', () => {
    expect(parseSelection(['--help'])).toEqual({ help: true });
    expect(parseSelection(['-h'])).toEqual({ help: true });
  });

  test('an unknown name is an error naming it and the valid ones', () => {
    const error = (() => {
      try {
        parseSelection(['flood', 'flod']);
      } catch (e) {
        return e as Error;
      }
      throw new Error('parseSelection accepted an unknown section');
    })();
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toContain('"flod"');
    for (const name of SECTION_NAMES) expect(error.message).toContain(name);
  });

  test('a section named twice, or an option among names, is an error', () => {
    expect(() => parseSelection(['flood', 'flood'])).toThrow(/flood named twice/);
    expect(() => parseSelection(['flood', '--help'])).toThrow(UsageError);
  });
});

describe('results.json merge', () => {
  const row = (name: string, value: number) => ({ name, value, unit: 'ns/packet' });
  const machine = { kernel: '6.18', cpus: 2 };
  const last = {
    date: '2026-12-01T00:00:00.000Z',
    machine: { kernel: '6.17', cpus: 2 },
    sections: { packetCost: [row('hit', 56)], maglev: [row('N=10', 0.9)] },
  };
  const floodRun = { sections: { flood: [row('kept', 80)] }, summaries: { flood: { establishedKept: 0.8 } } };

  test('a run of some sections keeps the others, dated as they were measured', () => {
    const merged = mergeResults(last, floodRun, 'now', machine);
    expect(merged.sections).toEqual({ packetCost: [row('hit', 56)], maglev: [row('N=10', 0.9)], flood: [row('kept', 80)] });
    expect(merged.sectionDates).toEqual({ packetCost: last.date, maglev: last.date, flood: 'now' });
    expect(merged.flood).toEqual({ establishedKept: 0.8 });
    expect(merged.date).toBe('now');
    expect(merged.machine).toEqual(machine);
  });

  test('a section run again replaces its rows and date; summaries of sections not run stay', () => {
    const first = mergeResults(last, floodRun, 'd1', machine);
    const second = mergeResults(
      parseResults(JSON.stringify(first)),
      { sections: { maglev: [row('N=10', 1.1)] }, summaries: {} },
      'd2',
      machine,
    );
    expect(second.sections.maglev).toEqual([row('N=10', 1.1)]);
    expect(second.sections.flood).toEqual([row('kept', 80)]);
    expect(second.flood).toEqual({ establishedKept: 0.8 });
    expect(second.sectionDates).toEqual({ packetCost: last.date, maglev: 'd2', flood: 'd1' });
  });

  test('without a file, the run is the whole file', () => {
    const merged = mergeResults(null, { sections: { flood: [row('kept', 80)] }, summaries: {} }, 'now', machine);
    expect(merged.sections).toEqual({ flood: [row('kept', 80)] });
    expect(merged.sectionDates).toEqual({ flood: 'now' });
  });

  test('a file the merge cannot keep is an error naming what is wrong', () => {
    expect(() => parseResults('{"sections": ')).toThrow(/results.json is not JSON/);
    expect(() => parseResults('[]')).toThrow(/not a JSON object/);
    expect(() => parseResults('{"sections": []}')).toThrow(/sections is not an object/);
  });
});

import { describe, expect, it } from 'vitest';
import { ConfigError, configFromEnv, loadConfig, maskedConfig, parseConfig } from './config.ts';

describe('config', () => {
  it('has a default for every field', () => {
    const config = parseConfig({});
    expect(config.server.port).toBe(8080);
    expect(config.vision.engine).toBe('onnx');
    expect(config.vision.workers).toBeGreaterThanOrEqual(1);
    expect(config.vision.quality.minFaceSizePx).toBeGreaterThan(0);
  });

  it('rejects unknown keys, naming them', () => {
    expect(() => parseConfig({ vision: { enigne: 'onnx' } })).toThrow(ConfigError);
    expect(() => parseConfig({ vision: { enigne: 'onnx' } })).toThrow(/vision/);
    expect(() => parseConfig({ nope: 1 })).toThrow(ConfigError);
  });

  it('rejects values out of range', () => {
    expect(() => parseConfig({ server: { port: 70000 } })).toThrow(/server.port/);
    expect(() => parseConfig({ vision: { engine: 'tfjs' } })).toThrow(/vision.engine/);
  });

  it('checks the attendance time zone and times of day', () => {
    expect(parseConfig({}).attendance).toMatchObject({ timeZone: 'UTC', dayBoundary: '04:00', startTime: '09:00', minAgreeingFrames: 3 });
    expect(parseConfig({ attendance: { timeZone: 'Europe/Berlin', dayBoundary: '00:00' } }).attendance.timeZone).toBe('Europe/Berlin');
    expect(() => parseConfig({ attendance: { timeZone: 'Mars/Olympus' } })).toThrow(/attendance.timeZone/);
    expect(() => parseConfig({ attendance: { startTime: '9:00' } })).toThrow(/attendance.startTime/);
    expect(() => parseConfig({ attendance: { dayBoundary: '24:00' } })).toThrow(/attendance.dayBoundary/);
    expect(() => parseConfig({ attendance: { workDays: [0] } })).toThrow(/attendance.workDays/);
  });

  it('maps FACEGATE_* variables onto the tree, with JSON values', () => {
    expect(configFromEnv({ FACEGATE_VISION__MAX_FACES: '5', FACEGATE_SERVER__HOST: '127.0.0.1', PORT: '9000' })).toEqual({
      vision: { maxFaces: 5 },
      server: { host: '127.0.0.1', port: 9000 },
    });
  });

  it('layers defaults < environment < overrides', () => {
    const config = loadConfig({
      env: { FACEGATE_VISION__WORKERS: '3', FACEGATE_VISION__ENGINE: 'human' },
      file: undefined,
      overrides: { vision: { workers: 1 } },
    });
    expect(config.vision.workers).toBe(1);
    expect(config.vision.engine).toBe('human');
  });

  it('masks secrets when printed', () => {
    const masked = maskedConfig(parseConfig({})) as Record<string, unknown>;
    expect(JSON.stringify(masked)).not.toContain('***'); // nothing secret yet in the defaults
    expect(maskedConfig({ a: { apiKey: 'abc', port: 1 } } as never)).toEqual({ a: { apiKey: '***', port: 1 } });
  });
});

// Shared helpers for flamekit's k6 scripts: the environment contract, the
// constant-arrival-rate scenario, optional thresholds and handleSummary().
//
// Every script in scripts/perf/ reads the same variables (all optional unless noted):
//
//   FK_TPS            iterations started per second (K6_TPS is accepted as an alias). Default 10.
//                     Fractional rates are allowed: k6 wants an integer `rate`, so 2.5 becomes
//                     rate 25 per timeUnit "10s" (same spacing, same average).
//   FK_DURATION       scenario duration, k6 syntax ("60s", "1m30s"); a bare number means seconds.
//   FK_VUS            preAllocatedVUs. Default: max(20, ceil(tps * 0.25 s * 3)).
//   FK_MAX_VUS        maxVUs. Default: max(100, ceil(tps * 4 s)), i.e. the rate survives
//                     iterations of up to ~4 s before k6 has to drop any.
//   FK_PHASE          "warmup" | "measure" (default "measure"); names the scenario and tags
//                     every sample with phase=<value>.
//   FK_SUMMARY        path of the JSON summary written by handleSummary(). Without it only the
//                     one-line text summary is printed on stdout.
//   FK_GRACEFUL_STOP  how long in-flight iterations may run past FK_DURATION (default "5s").
//   FK_HTTP_TIMEOUT   per-request timeout (default "10s"; k6's own default is 60s).
//   FK_THRESHOLD_P95_MS, FK_THRESHOLD_ERROR_RATE
//                     opt-in thresholds on http_req_duration p(95) and http_req_failed rate.
//                     None are set by default. A failed threshold makes `k6 run` exit with
//                     code 99 (after writing the summary); flamekit reports that as
//                     "thresholds failed", not as a crash.
//
// Exit codes worth knowing: 0 ok, 99 thresholds failed, 104 invalid options, 105 stopped by a
// signal (SIGINT: the summary is still written), 107 exception in the script (e.g. a bad
// FK_* value, thrown below at init time).

import { Counter } from 'k6/metrics';

const TREND_STATS = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)', 'count'];
const DURATION_RE = /^(\d+(\.\d+)?(ms|s|m|h))+$/;
const PHASE_RE = /^[A-Za-z0-9_-]{1,64}$/;

function raw(name) {
  const v = __ENV[name];
  return v === undefined || v === null || String(v).trim() === '' ? undefined : String(v).trim();
}

export function envString(name, fallback) {
  const v = raw(name);
  return v === undefined ? fallback : v;
}

export function envNumber(name, fallback, { min = -Infinity, integer = false } = {}) {
  const v = raw(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new Error(`${name}=${JSON.stringify(v)} is not a valid ${integer ? 'integer' : 'number'}` +
      (min > -Infinity ? ` >= ${min}` : ''));
  }
  return n;
}

export function envDuration(name, fallback) {
  let v = raw(name);
  if (v === undefined) return fallback;
  if (/^\d+(\.\d+)?$/.test(v)) v = `${v}s`;
  if (!DURATION_RE.test(v)) {
    throw new Error(`${name}=${JSON.stringify(v)} is not a k6 duration (e.g. "60s", "1m30s")`);
  }
  return v;
}

// Requests that got no HTTP answer at all (refused, reset, DNS, timeout: k6 reports status 0).
// flamekit reads fk_transport_errors to tell "the target is down" from "the target said 5xx".
const transportErrors = new Counter('fk_transport_errors');

export function track(res) {
  if (res.status === 0) transportErrors.add(1);
  return res;
}

// Integer rate per timeUnit that k6 accepts, for a possibly fractional iterations/second.
export function rateFor(tps) {
  for (const unit of [1, 10, 100, 1000]) {
    const r = tps * unit;
    if (Math.abs(r - Math.round(r)) < 1e-9) return { rate: Math.round(r), timeUnit: `${unit}s` };
  }
  return { rate: Math.round(tps * 1000), timeUnit: '1000s' };
}

// Reads the common contract once, in the init context. Throws on nonsense so k6 exits 107
// with a readable message instead of running the wrong test.
export function loadSettings() {
  const tpsRaw = raw('FK_TPS') !== undefined ? 'FK_TPS' : 'K6_TPS';
  const tps = envNumber(tpsRaw, 10, { min: 0 });
  if (!(tps > 0)) throw new Error(`${tpsRaw} must be > 0`);
  const pre = envNumber('FK_VUS', Math.max(20, Math.ceil(tps * 0.25 * 3)), { min: 1, integer: true });
  const max = envNumber('FK_MAX_VUS', Math.max(100, Math.ceil(tps * 4), pre), { min: 1, integer: true });
  if (max < pre) throw new Error(`FK_MAX_VUS (${max}) is smaller than FK_VUS (${pre})`);
  const phase = envString('FK_PHASE', 'measure');
  if (!PHASE_RE.test(phase)) throw new Error(`FK_PHASE=${JSON.stringify(phase)}: use letters, digits, - or _`);
  return {
    tps,
    duration: envDuration('FK_DURATION', '60s'),
    preAllocatedVUs: pre,
    maxVUs: max,
    phase,
    summaryPath: envString('FK_SUMMARY', undefined),
    gracefulStop: envDuration('FK_GRACEFUL_STOP', '5s'),
    httpTimeout: envDuration('FK_HTTP_TIMEOUT', '10s'),
    p95Ms: envNumber('FK_THRESHOLD_P95_MS', undefined, { min: 0 }),
    maxErrorRate: envNumber('FK_THRESHOLD_ERROR_RATE', undefined, { min: 0 }),
  };
}

export function buildOptions(s) {
  const { rate, timeUnit } = rateFor(s.tps);
  const thresholds = {};
  if (s.p95Ms !== undefined) thresholds.http_req_duration = [`p(95)<${s.p95Ms}`];
  if (s.maxErrorRate !== undefined) thresholds.http_req_failed = [`rate<=${s.maxErrorRate}`];
  return {
    scenarios: {
      [s.phase]: {
        executor: 'constant-arrival-rate',
        rate,
        timeUnit,
        duration: s.duration,
        preAllocatedVUs: s.preAllocatedVUs,
        maxVUs: s.maxVUs,
        gracefulStop: s.gracefulStop,
        tags: { phase: s.phase },
      },
    },
    thresholds,
    // p(99) only appears in the summary data when it is listed here.
    summaryTrendStats: TREND_STATS,
  };
}

function metricValue(data, metric, key, fallback = 0) {
  const m = data.metrics && data.metrics[metric];
  if (!m || !m.values || m.values[key] === undefined || m.values[key] === null) return fallback;
  return m.values[key];
}

function fmt(n, digits = 1) {
  return typeof n === 'number' && Number.isFinite(n) ? n.toFixed(digits) : '-';
}

// handleSummary() body shared by the scripts: adds a "flamekit" block describing the run to
// k6's summary data, writes it as JSON to FK_SUMMARY and prints one line on stdout.
export function summaryOutputs(data, s, script, extra = {}) {
  data.flamekit = Object.assign({
    script,
    phase: s.phase,
    target_tps: s.tps,
    duration: s.duration,
    pre_allocated_vus: s.preAllocatedVUs,
    max_vus: s.maxVUs,
  }, extra);
  const iterations = metricValue(data, 'iterations', 'count');
  const rate = metricValue(data, 'iterations', 'rate');
  const dropped = metricValue(data, 'dropped_iterations', 'count');
  const p95 = metricValue(data, 'http_req_duration', 'p(95)', NaN);
  const failed = metricValue(data, 'http_req_failed', 'rate');
  const checks = metricValue(data, 'checks', 'rate', 1);
  const line = `flamekit k6 ${script} [${s.phase}]: ${iterations} iterations ` +
    `(${fmt(rate, 2)}/s of ${s.tps}/s), dropped ${dropped}, http p95 ${fmt(p95)} ms, ` +
    `failed ${fmt(failed * 100, 2)}%, checks ${fmt(checks * 100, 2)}%\n`;
  const out = { stdout: line };
  if (s.summaryPath) out[s.summaryPath] = JSON.stringify(data, null, 2);
  return out;
}

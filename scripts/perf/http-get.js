// Generic load for a user's own stack: one GET per iteration against FK_TARGET_URL, driven by a
// constant-arrival-rate scenario with the common FK_* contract of lib/flamekit.js (FK_TPS,
// FK_DURATION, FK_VUS, FK_MAX_VUS, FK_PHASE, FK_SUMMARY, FK_GRACEFUL_STOP, FK_HTTP_TIMEOUT,
// FK_THRESHOLD_*). Variables specific to this script:
//
//   FK_TARGET_URL       full URL to GET (default: FK_BASE_URL, default http://127.0.0.1:8080/)
//   FK_EXPECTED_STATUS  comma-separated statuses or ranges that count as success, e.g.
//                       "200-299,304" (default "200-399", k6's own default)
//
// Errors (http_req_failed, failed checks): transport failures (status 0) and any status outside
// FK_EXPECTED_STATUS, which by default includes every 4xx and 5xx.
import http from 'k6/http';
import { check } from 'k6';
import { loadSettings, buildOptions, summaryOutputs, envString, track } from './lib/flamekit.js';

const S = loadSettings();
const TARGET_URL = envString('FK_TARGET_URL', envString('FK_BASE_URL', 'http://127.0.0.1:8080/'));
if (!/^https?:\/\//i.test(TARGET_URL)) {
  throw new Error(`FK_TARGET_URL=${JSON.stringify(TARGET_URL)} must start with http:// or https://`);
}

function parseExpected(spec) {
  const ranges = [];
  for (const part of spec.split(',').map((p) => p.trim()).filter((p) => p)) {
    const m = /^(\d{3})(?:-(\d{3}))?$/.exec(part);
    if (!m) throw new Error(`FK_EXPECTED_STATUS: cannot read ${JSON.stringify(part)} (use e.g. "200-299,304")`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new Error(`FK_EXPECTED_STATUS: empty range ${JSON.stringify(part)}`);
    ranges.push([lo, hi]);
  }
  if (ranges.length === 0) throw new Error('FK_EXPECTED_STATUS is empty');
  return ranges;
}

const EXPECTED = parseExpected(envString('FK_EXPECTED_STATUS', '200-399'));
const CALLBACK = http.expectedStatuses(...EXPECTED.map(([lo, hi]) => (lo === hi ? lo : { min: lo, max: hi })));
const isExpected = (status) => EXPECTED.some(([lo, hi]) => status >= lo && status <= hi);

export const options = buildOptions(S);

export default function () {
  const res = track(http.get(TARGET_URL, {
    timeout: S.httpTimeout,
    responseType: 'none',
    responseCallback: CALLBACK,
    tags: { step: 'get' },
  }));
  check(res, { 'status is expected': (r) => isExpected(r.status) });
}

export function handleSummary(data) {
  return summaryOutputs(data, S, 'http-get', { target_url: TARGET_URL });
}

// flamekit demo order flow, one iteration = one customer:
//   1. GET  {base}/api/inventory/stock/{sku}      look up stock
//   2. POST {base}/api/orders                      place an order for that SKU
//   3. GET  {base}/api/orders/{id}                 read the order back (when step 2 gave an id)
// driven by a constant-arrival-rate scenario (see lib/flamekit.js for the common FK_* contract:
// FK_TPS, FK_DURATION, FK_VUS, FK_MAX_VUS, FK_PHASE, FK_SUMMARY, FK_GRACEFUL_STOP,
// FK_HTTP_TIMEOUT, FK_THRESHOLD_*). Variables specific to this script:
//
//   FK_BASE_URL         gateway root (default http://127.0.0.1:8080)
//   FK_SKUS             SKUs are SKU-1..SKU-<n>, as seeded by sample data (default 50)
//   FK_SKU_PREFIX       default "SKU-"
//   FK_CUSTOMERS        customers are c-1..c-<n> (default 20)
//   FK_CUSTOMER_PREFIX  default "c-"
//   FK_MAX_QTY          each order asks for 1..n units (default 2)
//   FK_CARD             card number sent with every order (default 4111-1111-1111-1111)
//   FK_RESTOCK_QTY      if set, setup() first sets every SKU's stock to this quantity through
//                       POST /api/inventory/stock/bulk, so a long run is not dominated by
//                       out-of-stock rejections (that request is tagged step=restock).
//
// What counts as an error (http_req_failed, failed checks, fk_iteration_errors):
//   - any transport failure (status 0: refused, reset, timeout) and any 5xx;
//   - a stock lookup that is not 200 (404 means sample data is missing);
//   - an order POST answered with anything but 201 or 409, or a 201 without an order id;
//   - a read-back that is not 200 or returns another order.
// Legitimate business outcomes, NOT errors, each counted in its own counter:
//   - 201 with status CONFIRMED               fk_orders_confirmed
//   - 201 with status FAILED (card declined)  fk_orders_payment_failed
//   - 409 (REJECTED, out of stock)            fk_orders_rejected
//   - 201 with any other status               fk_orders_other (not an error, but visible)
// (separate counters rather than one tagged counter: k6's summary data only carries tagged
// sub-metrics that have a threshold.)
import http from 'k6/http';
import { check } from 'k6';
import { Counter, Rate } from 'k6/metrics';
import { loadSettings, buildOptions, summaryOutputs, envNumber, envString, track } from './lib/flamekit.js';

// Endpoint shapes live here so a change in the demo stack is a one-line edit.
const STOCK_PATH = (sku) => `/api/inventory/stock/${encodeURIComponent(sku)}`;
const STOCK_BULK_PATH = '/api/inventory/stock/bulk';
const ORDERS_PATH = '/api/orders';
const ORDER_PATH = (id) => `/api/orders/${encodeURIComponent(id)}`;
const ORDER_STATUS_CREATED = 201;
const ORDER_STATUS_REJECTED = 409;

const S = loadSettings();
const BASE_URL = envString('FK_BASE_URL', 'http://127.0.0.1:8080').replace(/\/+$/, '');
const SKUS = envNumber('FK_SKUS', 50, { min: 1, integer: true });
const SKU_PREFIX = envString('FK_SKU_PREFIX', 'SKU-');
const CUSTOMERS = envNumber('FK_CUSTOMERS', 20, { min: 1, integer: true });
const CUSTOMER_PREFIX = envString('FK_CUSTOMER_PREFIX', 'c-');
const MAX_QTY = envNumber('FK_MAX_QTY', 2, { min: 1, integer: true });
const CARD = envString('FK_CARD', '4111-1111-1111-1111');
const RESTOCK_QTY = envNumber('FK_RESTOCK_QTY', undefined, { min: 0, integer: true });

export const options = buildOptions(S);

const orderOutcomes = {
  confirmed: new Counter('fk_orders_confirmed'),
  payment_failed: new Counter('fk_orders_payment_failed'),
  rejected: new Counter('fk_orders_rejected'),
  other: new Counter('fk_orders_other'),
};
const iterationErrors = new Rate('fk_iteration_errors');

const JSON_HEADERS = { 'Content-Type': 'application/json', Accept: 'application/json' };
// Only the order POST treats 409 as an expected answer; everything else keeps k6's default
// (200-399 expected), so a 409 anywhere else still counts in http_req_failed.
const ORDER_EXPECTED = http.expectedStatuses({ min: 200, max: 299 }, ORDER_STATUS_REJECTED);

function pick(n) {
  return 1 + Math.floor(Math.random() * n);
}

// Price is a pure function of the SKU so repeated runs send the same amounts.
function unitPrice(n) {
  return 5 + (n % 20) * 2.5;
}

function jsonBody(res) {
  try {
    return res.json();
  } catch (e) {
    return null;
  }
}

function params(step, extra = {}) {
  return Object.assign({ headers: JSON_HEADERS, timeout: S.httpTimeout, tags: { step } }, extra);
}

export function setup() {
  if (RESTOCK_QTY === undefined) return;
  const items = [];
  for (let i = 1; i <= SKUS; i++) items.push({ sku: `${SKU_PREFIX}${i}`, qty: RESTOCK_QTY });
  const res = track(http.post(`${BASE_URL}${STOCK_BULK_PATH}`, JSON.stringify(items), params('restock')));
  if (res.status < 200 || res.status > 299) {
    throw new Error(`restock failed: POST ${BASE_URL}${STOCK_BULK_PATH} -> ${res.status} ${res.error || ''}`);
  }
}

// order-service names the id "orderId"; "id" is accepted too, for stacks that use it
function orderId(body) {
  if (body === null || body === undefined) return null;
  const v = body.orderId !== undefined && body.orderId !== null ? body.orderId : body.id;
  return v === undefined || v === null ? null : String(v);
}

export default function () {
  const n = pick(SKUS);
  const sku = `${SKU_PREFIX}${n}`;
  let ok = true;

  const stock = track(http.get(`${BASE_URL}${STOCK_PATH(sku)}`, params('stock', { responseType: 'none' })));
  ok = check(stock, { 'stock lookup is 200': (r) => r.status === 200 }) && ok;

  const qty = pick(MAX_QTY);
  const order = {
    customerId: `${CUSTOMER_PREFIX}${pick(CUSTOMERS)}`,
    items: [{ sku, qty, unitPrice: unitPrice(n) }],
    cardNumber: CARD,
  };
  const placed = track(http.post(`${BASE_URL}${ORDERS_PATH}`, JSON.stringify(order),
    params('order', { responseCallback: ORDER_EXPECTED })));
  const body = jsonBody(placed);
  const id = orderId(body);
  ok = check(placed, {
    'order is 201 or 409': (r) => r.status === ORDER_STATUS_CREATED || r.status === ORDER_STATUS_REJECTED,
    'created order has an id': (r) => r.status !== ORDER_STATUS_CREATED || id !== null,
  }) && ok;

  if (placed.status === ORDER_STATUS_CREATED) {
    const status = body && typeof body.status === 'string' ? body.status.toUpperCase() : '';
    const outcome = status === 'CONFIRMED' ? 'confirmed' : status === 'FAILED' ? 'payment_failed' : 'other';
    orderOutcomes[outcome].add(1);
  } else if (placed.status === ORDER_STATUS_REJECTED) {
    orderOutcomes.rejected.add(1);
  }

  if (id !== null) {
    const back = track(http.get(`${BASE_URL}${ORDER_PATH(id)}`, params('read')));
    ok = check(back, {
      'order read back is 200': (r) => r.status === 200,
      'order read back has the same id': (r) => {
        const b = jsonBody(r);
        return orderId(b) === id;
      },
    }) && ok;
  }
  iterationErrors.add(!ok);
}

export function handleSummary(data) {
  return summaryOutputs(data, S, 'order-flow', {
    base_url: BASE_URL,
    skus: SKUS,
    customers: CUSTOMERS,
    restock_qty: RESTOCK_QTY === undefined ? null : RESTOCK_QTY,
  });
}

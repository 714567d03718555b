package demo.order;

import demo.common.Json;

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;

/**
 * Renders an order as JSON. PLANTED ALLOCATION HOTSPOT: write builds the document by naive
 * String concatenation (every += copies the whole document so far) and repeats that rendering
 * in "verification passes", each also copying the text to UTF-8 bytes. Only the last pass is
 * returned; the output never depends on the cost.
 *
 * Cost: 1 + round(EXTRA_PASSES_AT_COST_1 * ORDER_JSON_COST) passes (cost 0 = a single pass).
 */
public final class OrderJson {
    /** Calibrated to a few hundred KB allocated per call at cost 1 (see docker/demo/README.md). */
    static final int EXTRA_PASSES_AT_COST_1 = 32;

    private static volatile int extraPasses = EXTRA_PASSES_AT_COST_1;
    /** Sink for the pass digests so no pass is dead code. */
    private static volatile long lastDigest;

    private OrderJson() {
    }

    public static void configure(double cost) {
        extraPasses = (int) Math.round(EXTRA_PASSES_AT_COST_1 * cost);
    }

    public static int extraPasses() {
        return extraPasses;
    }

    public static String write(Order o) {
        int passes = 1 + extraPasses;
        long digest = 17;
        String doc = "";
        for (int pass = 0; pass < passes; pass++) {
            doc = "{";
            doc = doc + "\"orderId\":" + Json.quote(o.orderId());
            doc = doc + ",\"customerId\":" + Json.quote(o.customerId());
            doc = doc + ",\"status\":" + Json.quote(o.status());
            doc = doc + ",\"items\":[";
            for (int i = 0; i < o.items().size(); i++) {
                OrderLine line = o.items().get(i);
                if (i > 0) {
                    doc = doc + ",";
                }
                doc = doc + "{\"sku\":" + Json.quote(line.sku());
                doc = doc + ",\"qty\":" + line.qty();
                doc = doc + ",\"unitPrice\":" + line.unitPrice().toPlainString();
                doc = doc + ",\"lineTotal\":" + line.lineTotal().toPlainString();
                doc = doc + "}";
            }
            doc = doc + "]";
            Quote q = o.quote();
            doc = doc + ",\"subtotal\":" + money(q == null ? null : q.subtotal());
            doc = doc + ",\"discount\":" + money(q == null ? null : q.discount());
            doc = doc + ",\"tax\":" + money(q == null ? null : q.tax());
            doc = doc + ",\"total\":" + money(q == null ? null : q.total());
            doc = doc + ",\"currency\":\"EUR\"";
            doc = doc + ",\"reservationStatus\":" + text(o.reservationStatus());
            doc = doc + ",\"paymentStatus\":" + text(o.paymentStatus());
            doc = doc + ",\"authorizationId\":" + text(o.authorizationId());
            doc = doc + ",\"failureReason\":" + text(o.failureReason());
            doc = doc + ",\"cardLast4\":" + text(o.cardLast4());
            doc = doc + ",\"pricingChecksum\":"
                    + (q == null ? "null" : Json.quote(Long.toHexString(q.checksum())));
            doc = doc + ",\"createdAt\":" + Json.quote(o.createdAt().toString());
            doc = doc + ",\"updatedAt\":" + Json.quote(o.updatedAt().toString());
            doc = doc + "}";
            byte[] utf8 = doc.getBytes(StandardCharsets.UTF_8);
            digest = digest * 31 + utf8.length + utf8[utf8.length / 2];
        }
        lastDigest = digest;
        return doc;
    }

    private static String money(BigDecimal amount) {
        return amount == null ? "null" : amount.toPlainString();
    }

    private static String text(String value) {
        return value == null ? "null" : Json.quote(value);
    }
}
